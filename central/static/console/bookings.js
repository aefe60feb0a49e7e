/* Today's booked appointments of the clerk's departments: when, where, how many booked and how many came.
 * Counts only (GET /console/bookings, central/web/console_bookings.py), fetched on load and every minute. */
import { t } from './i18n.js';
import { ui } from './page.js';

const REFRESH_MS = 60_000;

/** "09:00" in the department's own time zone (24 hours, as the offices write it), in the page's language. */
export function slotTime(seconds, timeZone) {
  return new Intl.DateTimeFormat(document.documentElement.lang || 'de',
    { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone }).format(new Date(seconds * 1000));
}

function render(slots, now) {
  ui.bookingsEmpty.hidden = slots.length > 0;
  ui.bookingsList.replaceChildren(...slots.map((slot) => {
    const item = document.createElement('li');
    item.dataset.testid = 'booked-slot';
    item.dataset.department = slot.department;
    item.dataset.state = now >= slot.slot_end ? 'past' : now >= slot.slot_start ? 'now' : 'later';
    if (item.dataset.state === 'now') item.setAttribute('aria-current', 'time');
    const when = document.createElement('strong');
    when.textContent = `${slotTime(slot.slot_start, slot.time_zone)}–${slotTime(slot.slot_end, slot.time_zone)}`;
    item.append(when, ` ${slot.name} · `,
      t('%(booked)s booked, %(came)s checked in', { booked: slot.booked, came: slot.checked_in }));
    return item;
  }));
}

async function refresh() {
  try {
    const answer = await fetch('/console/bookings', { credentials: 'same-origin', redirect: 'manual' });
    if (!answer.ok) return; // logged out (the socket says so) or central away: keep what is shown
    const body = await answer.json();
    render(body.slots, body.server_time);
  } catch { /* offline for a moment: the next round tries again */ }
}

export function startBookings() {
  refresh();
  setInterval(refresh, REFRESH_MS);
}
