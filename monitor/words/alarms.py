"""The words of Vigil's own alarms in zh-CN and English: each device's (communication lost,
answers wrongly, needs a person, authentication failure), a push source's, power's, the
notifier's and the daemon's (store, sink, outbox, bus, internal tasks). Each alarm has its
name (``KEY``), what to do (``KEY.advice``) and, where it says more while it stands,
``KEY.now``. ``{name}`` is filled in; the site's language chooses."""

from __future__ import annotations

from monitor.words.report import Language

Pair = tuple[str, str]

SAID: dict[str, Pair] = {
    # every device's own
    "comm": ("{device} 通信中断", "{device}: communication lost"),
    "comm.now": ("{device} 通信中断: {reason}", "{device}: communication lost: {reason}"),
    "comm.advice": ("检查设备供电、网线和交换机, 确认设备在线",
                    "check the device's power, cable and switch; make sure it is online"),
    "protocol": ("{device} 应答异常", "{device} answers wrongly"),
    "protocol.advice": ("核对设备型号、固件与配置的点表是否一致",
                        "check that the model, firmware and the configured points agree"),
    "operator": ("{device} 需要人工处理", "{device} needs a person"),
    "operator.now": ("{device} 需要人工处理: {reason}", "{device} needs a person: {reason}"),
    "operator.advice": ("按设备面板的提示到现场处理", "go and act as the device's panel says"),
    "auth": ("{device} 收到认证失败通知 (凭据错误的访问)",
             "{device} reports a request with wrong credentials"),
    "auth.now": ("{device} 收到认证失败通知: {reason}",
                 "{device} reports an authentication failure: {reason}"),
    "auth.advice": ("查明是谁用错误凭据访问设备; 不明来源按安全事件上报",
                    "find out who used wrong credentials; report an unknown source as a "
                    "security incident"),
    "commok": ("通信恢复", "communication restored"),
    # push sources
    "push": ("数据源 {source} 中断", "source {source} silent"),
    "push.now": ("数据源 {source} 中断: {reason}", "source {source} silent: {reason}"),
    "push.advice": ("检查该数据源 (网关、代理) 的运行和网络",
                    "check that the source (gateway, agent) runs and its network"),
    "push.silent": ("超过 {seconds} 秒没有消息", "no message for over {seconds} s"),
    # power
    "power:site": ("全站市电中断", "mains lost at the whole site"),
    "power:site.advice": ("启动停电应急预案; 联系物业确认停电范围和恢复时间",
                          "start the power-loss procedure; ask property management how far "
                          "the outage goes and when mains returns"),
    "power": ("{ups} 电池供电", "{ups} on battery"),
    "power.advice": ("确认市电和 UPS 输入; 联系物业; 按停电预案准备关机",
                     "check mains and the UPS input; call property management; prepare the "
                     "shutdown the power-loss procedure says"),
    "power:runtime": ("{ups} 后备时间不足", "{ups} runtime too short"),
    "power:runtime.now": ("{ups} 剩余后备时间 {runtime} 分钟, 所供设备需要 {needed} 分钟",
                          "{ups} has {runtime} min of runtime left; what it feeds needs "
                          "{needed} min"),
    "power:runtime.advice": ("减少该 UPS 的负载, 或安排电池检测和更换",
                             "take load off the UPS, or have its batteries tested and replaced"),
    # the action runner's events
    "action.dry_run": ("演练模式, 未执行: 本应 {what}", "dry run, nothing run: would {what}"),
    "action.run": ("执行 {argv}", "run {argv}"),
    "action.publish": ("发布到 {url}", "publish to {url}"),
    "action.refused": ("已拒绝: {program} 不在 actions.allowed_commands 中",
                       "refused: {program} is not in actions.allowed_commands"),
    "action.cancelled": ("未完成即取消, vigil 已停止", "cancelled unfinished, vigil stopped"),
    "action.timeout": ("{seconds} 秒内未完成", "timed out after {seconds} s"),
    "action.failed": ("执行失败: {error}", "failed: {error}"),
    # the notifier
    "notify:failed": ("通知发送全部失败, 无人收到告警", "no message got through: nobody heard"),
    "notify:drill_failed": ("【演练】演练通知无人收到", "[DRILL] a drill's message reached nobody"),
    "notify.page_failed": ("告警 {alarm} 的通知全部发送失败, 无人收到",
                           "every message of alarm {alarm} failed: nobody heard"),
    "notify.incident_failed": ("应急事件 {title} 的通知无人收到",
                               "the message of incident {title} reached nobody"),
    "notify.nobody": ("应急事件 {playbook} 的通知无人收到: {text}",
                      "the message of {playbook} reached nobody: {text}"),
    "notify.no_one_holds": ("无人可通知 (角色: {roles})", "nobody to tell (roles: {roles})"),
    "notify.more": (" (另有 {n} 条)", " ({n} more)"),
    "notify.drill": ("【演练】{text}", "[DRILL] {text}"),
    # the daemon's own
    "sink:unavailable": ("时序库不可达, 数据暂存本地", "time-series store unreachable, data kept"),
    "sink:unavailable.now": ("时序库不可达: {reason}", "time-series store unreachable: {reason}"),
    "sink:unavailable.advice": ("检查时序库服务和网络; 恢复后数据自动补发",
                                "check the time-series store and the network; what is kept "
                                "goes once it is back"),
    "sink:rejected": ("时序库拒绝写入", "time-series store refuses writes"),
    "sink:rejected.now": ("时序库拒绝写入: {reason}", "time-series store refuses writes: "
                                                       "{reason}"),
    "sink:rejected.advice": ("检查时序库的令牌、权限和存储空间 (详情见 vigil 日志)",
                             "check the store's token, rights and space (vigil's log says "
                             "more)"),
    "outbox:filling": ("本地待发数据接近上限", "data waiting to be sent nears its bound"),
    "outbox:filling.now": ("本地待发数据 {size} MiB, 上限 {bound} MiB",
                           "{size} MiB waiting to be sent, bound {bound} MiB"),
    "outbox:filling.advice": ("尽快恢复时序库; 或调大 store.outbox.max_bytes",
                              "bring the time-series store back; or raise "
                              "store.outbox.max_bytes"),
    "outbox:overflow": ("本地待发数据超限, 最旧数据已丢弃", "data waiting to be sent over its "
                                                           "bound: the oldest dropped"),
    "outbox:overflow.now": ("本地待发数据超限, 已丢弃最旧的 {lines} 行",
                            "over its bound: the oldest {lines} lines dropped"),
    "outbox:overflow.advice": ("尽快恢复时序库; 丢弃的时段在报表中会缺数",
                               "bring the time-series store back; the dropped time is missing "
                               "from the reports"),
    "store:write_failed": ("数据库写入失败", "the database cannot be written"),
    "store:write_failed.advice": ("检查服务器磁盘空间和数据目录权限",
                                  "check the server's disk space and the data directory's "
                                  "rights"),
    "store.write_failed": ("数据库写入失败: {error}", "the database cannot be written: {error}"),
    "store.cannot_open": ("数据库无法打开: {error}", "the database cannot be opened: {error}"),
    "store.corrupt": ("数据库文件损坏 ({why}), 已移至 {aside} 并新建数据库",
                      "the database file is damaged ({why}): set aside as {aside}, and a new "
                      "one made"),
    "store.replaced": ("数据库文件 {file} 在运行中被替换, 已改用新文件",
                       "the database file {file} was replaced while running: the new one is "
                       "used"),
    "store.deleted_saved": ("数据库文件 {file} 在运行中被删除, 已从仍打开的文件恢复全部数据",
                            "the database file {file} was deleted while running: all of it was "
                            "saved from the file still open"),
    "store.deleted_lost": ("数据库文件 {file} 在运行中被删除, 已新建数据库, 旧数据丢失",
                           "the database file {file} was deleted while running: a new one was "
                           "made, and the old data is lost"),
    "store.dropped_n": ("数据库写入失败, 内存队列已满, 已丢弃 {n} 条数据",
                        "the database cannot be written and memory is full: {n} items "
                        "dropped"),
    "store:recreated": ("数据库文件损坏或丢失, 已新建", "the database was damaged or lost and "
                                                         "made anew"),
    "store:recreated.advice": ("旧文件已另存于数据目录; 检查磁盘健康",
                               "the old file is set aside in the data directory; check the "
                               "disk"),
    "store:dropped": ("数据库写入失败且内存队列已满, 数据已丢弃",
                      "the database cannot be written and memory is full: data dropped"),
    "store:dropped.advice": ("立即检查服务器磁盘空间", "check the server's disk space now"),
    "bus:overflow": ("内部事件队列溢出, 有事件被丢弃", "an internal queue overflowed: events "
                                                       "dropped"),
    "bus:overflow.now": ("内部事件队列溢出: {part} 处理不过来, 已丢弃 {n} 个事件",
                         "internal queue overflowed: {part} cannot keep up, {n} events "
                         "dropped"),
    "bus:overflow.advice": ("查看 /health 中落后的组件, 并报告给 Vigil 维护人员",
                            "see which part lags on /health and tell Vigil's maintainers"),
    "internal": ("内部任务 {task} 异常", "internal task {task} failed"),
    "internal.now": ("内部任务 {task} 异常退出, 已自动重启: {reason}",
                     "internal task {task} died and was restarted: {reason}"),
    "internal.advice": ("已自动重启; 反复出现时把 vigil 日志交给维护人员",
                        "restarted by itself; if it keeps happening, give vigil's log to its "
                        "maintainers"),
}


def said(key: str, language: Language | str = "zh-CN", **values: object) -> str:
    """The words of ``key`` in ``language`` (zh-CN unless English), ``{name}`` filled in."""
    return SAID[key][1 if language == "en" else 0].format(**values)
