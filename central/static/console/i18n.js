/* Texts and formats of the console: central translates every string the scripts show into the page's
 * language and embeds them as JSON in #strings (the CSP allows no inline code, JSON is data). */

const STRINGS = JSON.parse(document.getElementById('strings').textContent);

/** Translation of an English msgid (listed in central/web/console.py); "%(name)s" is replaced from vars. */
export function t(key, vars = {}) {
  return (STRINGS[key] ?? key).replace(/%\((\w+)\)s/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/** Fill [data-t] texts and [data-t-label] labels below root. */
export function applyStrings(root) {
  for (const node of root.querySelectorAll('[data-t]')) node.textContent = t(node.dataset.t);
  for (const node of root.querySelectorAll('[data-t-label]')) node.setAttribute('aria-label', t(node.dataset.tLabel));
  return root;
}

/** A translated copy of the first element of <template id="...">. */
export const cloneTemplate = (id) => applyStrings(document.getElementById(id).content.firstElementChild.cloneNode(true));

/** Where a visit comes from: its kiosk's location, or "online" for a visit from home (origin "online"). */
export function whereFrom(visit) {
  return visit.origin === 'online' ? t('online (from home)') : visit.kiosk_location;
}

/** "tr" -> "Türkisch" in the page's language. */
export function languageName(code) {
  try { return new Intl.DisplayNames([document.documentElement.lang || 'de'], { type: 'language' }).of(code); } catch { return code; }
}

/** Seconds as "m:ss" or "h:mm:ss". */
export function formatWait(seconds) {
  const s = Math.max(0, Math.floor(seconds)); // a clerk PC clock ahead of central must not show "-0:03"
  const pad = (n) => String(n).padStart(2, '0');
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}
