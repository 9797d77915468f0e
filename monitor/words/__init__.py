"""What people read, in zh-CN and English: labels of every id, values and durations as
people say them, drivers' reasons in Chinese, the console's words and the reports' words."""
