// JSON in localStorage that never throws: a missing, corrupt or disabled store reads as the fallback,
// and a full one keeps the page working in memory.

export function readJSON(key, fallback) {
  try {
    const raw = localStorage.getItem(key);
    return raw ? JSON.parse(raw) : fallback;
  } catch {
    return fallback;
  }
}

export function writeJSON(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    /* storage full or disabled: keep working in memory */
  }
}
