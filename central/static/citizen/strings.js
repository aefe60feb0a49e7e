/* Texts of the citizen pages' scripts: the page embeds its language's catalogue as JSON in
 * #citizen-strings (central/citizen/pages.py); msgids are English and are extracted from t('…') and
 * N_('…') by `python -m central.citizen.update_translations`. */

const STRINGS = JSON.parse(document.getElementById('citizen-strings')?.textContent || '{}');

/** The page's translation of an English msgid; "%(name)s" is replaced from vars. */
export function t(msgid, vars = {}) {
  return (STRINGS[msgid] || msgid).replace(/%\((\w+)\)s/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/** Marks a msgid for the catalogue where it is only named (translated later with t). */
export const N_ = (msgid) => msgid;

/** The page's language code, e.g. "ar". */
export const pageLanguage = () => document.documentElement.lang || 'de';
