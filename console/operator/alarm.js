// The escalation alarm: a short two-tone beep made with WebAudio (no sound file), repeated while
// alarms stay unacknowledged, with a mute switch remembered in localStorage.
const REPEAT_MS = 30000;

export class Alarm {
  constructor(storageKey) {
    this.key = storageKey;
    this.muted = localStorage.getItem(storageKey) === "1";
    this.ctx = null;
    this.timer = null;
    this.rings = 0; // how many times it sounded (or would have, when muted): for tests and the log
  }

  setMuted(muted) {
    this.muted = muted;
    localStorage.setItem(this.key, muted ? "1" : "0");
  }

  /** Browsers only allow audio after a user gesture: call this from one. */
  unlock() {
    try {
      if (!this.ctx) {
        const AC = window.AudioContext || window.webkitAudioContext;
        if (!AC) return;
        this.ctx = new AC();
      }
      if (this.ctx.state === "suspended") this.ctx.resume();
    } catch {
      /* no audio device: the banner still shows */
    }
  }

  ring() {
    this.beep();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.beep(), REPEAT_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  /** Whether it is repeating now (an alarm nobody has taken or dismissed). */
  get sounding() {
    return this.timer !== null;
  }

  beep() {
    this.rings += 1;
    if (this.muted) return;
    this.unlock();
    const ctx = this.ctx;
    if (!ctx) return;
    const t0 = ctx.currentTime + 0.02;
    for (let i = 0; i < 3; i++) {
      for (const [freq, off] of [[880, 0], [660, 0.18]]) {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.type = "sine";
        osc.frequency.value = freq;
        const start = t0 + i * 0.5 + off;
        gain.gain.setValueAtTime(0.0001, start);
        gain.gain.exponentialRampToValueAtTime(0.25, start + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.16);
        osc.connect(gain).connect(ctx.destination);
        osc.start(start);
        osc.stop(start + 0.17);
      }
    }
  }
}
