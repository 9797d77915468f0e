// A new critical alarm is heard and seen: a short beep made with the Web Audio API (no file),
// and a tab title that flashes until no critical alarm waits for acknowledgement. The sound
// can be muted for a shift (8 hours, kept in this browser).
const MUTE = "vigil-mute-until";
const SHIFT = 8 * 3600 * 1000;
let audio = null;
let lastBeep = 0;
let flashing = null;

export const mutedUntil = () => Number(localStorage.getItem(MUTE)) || 0;
export const muted = () => mutedUntil() > Date.now();

export function mute(on) {
  if (on) localStorage.setItem(MUTE, String(Date.now() + SHIFT));
  else localStorage.removeItem(MUTE);
}

/** Browsers allow sound after a gesture: the first click or key on the page enables it. */
export function allowSound() {
  const enable = () => {
    audio = audio || new AudioContext();
    audio.resume();
  };
  document.addEventListener("pointerdown", enable, {once: true});
  document.addEventListener("keydown", enable, {once: true});
}

/** Three short tones, at most once in two seconds (a storm is one beep). Returns false when
 * the browser has not allowed sound yet. */
export function beep() {
  if (muted() || Date.now() - lastBeep < 2000) return true;
  lastBeep = Date.now();
  audio = audio || new AudioContext();
  const start = audio.currentTime;
  [880, 660, 880].forEach((pitch, i) => {
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = pitch;
    gain.gain.setValueAtTime(0.25, start + i * 0.22);
    gain.gain.exponentialRampToValueAtTime(0.001, start + i * 0.22 + 0.2);
    tone.connect(gain).connect(audio.destination);
    tone.start(start + i * 0.22);
    tone.stop(start + i * 0.22 + 0.2);
  });
  return audio.state === "running";
}

let said = {text: "", title: document.title};

/** Flash ``text`` in the tab's title while ``on``; the title is ``title`` otherwise. */
export function flash(on, text, title) {
  said = {text, title};
  if (!on) {
    clearInterval(flashing);
    flashing = null;
    document.title = title;
    return;
  }
  if (flashing) return;
  let lit = false;
  const blink = () => {
    lit = !lit;
    document.title = lit ? `【${said.text}】${said.title}` : said.title;
  };
  blink();
  flashing = setInterval(blink, 800);
}
