/* The waiting list: one section per department, one row per waiting visit, transfer and message controls. */
import { cloneTemplate, formatWait, languageName, t, whereFrom } from './i18n.js';
import { $, announce, state, ui } from './page.js';
import { isOpen, send } from './connection.js';
import { slotTime } from './bookings.js';

const BASE_TITLE = document.title;

/** Take over the lists of a console.snapshot; returns the visits that were not shown before. */
export function showSnapshot(msg) {
  const known = new Set(state.rows.keys());
  state.targets = msg.transfer_targets;
  state.departments = new Map(msg.departments.map((d) => [d.slug,
    { slug: d.slug, name: d.name, open: d.open, waiting: new Map(d.waiting.map((v) => [v.visit_id, v])) }]));
  const current = new Set(msg.departments.flatMap((d) => d.waiting.map((v) => v.visit_id)));
  for (const id of known) if (!current.has(id)) state.rows.delete(id);
  for (const row of state.rows.values()) fillTransfer($('select', row), row.dataset.department);
  renderDepartments();
  return msg.departments.flatMap((d) => d.waiting).filter((v) => !known.has(v.visit_id));
}

// Put nodes into container in this order, moving only those out of place so focus and typing survive.
function placeInOrder(container, nodes) {
  nodes.forEach((node, i) => {
    if (container.children[i] !== node) container.insertBefore(node, container.children[i] ?? null);
  });
  while (container.children.length > nodes.length) container.lastElementChild.remove();
}

function renderDepartments() {
  for (const slug of state.sections.keys()) if (!state.departments.has(slug)) state.sections.delete(slug);
  placeInOrder(ui.departments, [...state.departments.values()].map((dept) => {
    let section = state.sections.get(dept.slug);
    if (!section) {
      section = cloneTemplate('tpl-department');
      section.dataset.department = dept.slug;
      $('.pickup-next', section).addEventListener('click', () => send({ type: 'visit.pickup', department: dept.slug }));
      state.sections.set(dept.slug, section);
    }
    $('.department-name', section).textContent = dept.name;
    $('.department-open', section).textContent = t(dept.open ? 'Open' : 'Closed');
    $('.department-open', section).dataset.open = dept.open;
    return section;
  }));
  for (const slug of state.departments.keys()) renderQueue(slug);
}

function renderQueue(slug) {
  const dept = state.departments.get(slug), section = state.sections.get(slug);
  const visits = [...dept.waiting.values()].sort(queueOrder(Date.now() / 1000 + state.clockSkew));
  placeInOrder($('.visits', section), visits.map(rowFor));
  $('.empty', section).hidden = visits.length > 0;
  $('.department-count', section).textContent = visits.length;
  const total = [...state.departments.values()].reduce((sum, d) => sum + d.waiting.size, 0);
  ui.queueCount.textContent = total;
  document.title = total ? `(${total}) ${BASE_TITLE}` : BASE_TITLE;
  updateButtons();
}

/** Central's order (central/rooms/waiting_rooms.py): booked visits whose slot has begun first, by slot start;
 * then everyone by arrival. */
export function queueOrder(now) {
  const key = (v) => (v.slot_start != null && v.slot_start <= now ? [0, v.slot_start, v.arrived_at] : [1, 0, v.arrived_at]);
  return (a, b) => {
    const [x, y] = [key(a), key(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
  };
}

function rowFor(visit) {
  const id = visit.visit_id;
  let row = state.rows.get(id);
  if (row && row.dataset.department !== visit.department) { // moved while we were offline
    row.dataset.department = visit.department;
    fillTransfer($('select', row), visit.department);
  }
  if (row) return row;
  row = cloneTemplate('tpl-visit');
  Object.assign(row.dataset, { visitId: id, department: visit.department });
  Object.assign($('.visit-where', row), { textContent: whereFrom(visit), id: `where-${id}` });
  $('.visit-language', row).textContent = languageName(visit.language);
  if (visit.slot_start != null) {
    const booked = $('.visit-booked', row);
    booked.textContent = t('Appointment %(time)s', { time: slotTime(visit.slot_start) });
    booked.hidden = false;
  }
  $('.visit-waited', row).dataset.since = visit.arrived_at;
  tick(row, Date.now() / 1000 + state.clockSkew);
  // Every row has a "Pick up" button: tie each to its kiosk for screen readers.
  $('.pickup', row).setAttribute('aria-describedby', `where-${id}`);
  $('.pickup', row).addEventListener('click', () => send({ type: 'visit.pickup', visit_id: id }));
  fillTransfer($('select', row), visit.department);
  wireTransfer($('select', row), () => id);
  const input = $('input', row);
  input.value = t('I will be with you in 2 minutes.');
  $('form', row).addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (text && send({ type: 'visit.message', visit_id: id, text })) announce(t('Message sent.'));
  });
  state.rows.set(id, row);
  return row;
}

function tick(row, now) {
  const waited = $('.visit-waited', row);
  waited.textContent = t('waiting for %(minutes)s min', { minutes: formatWait(now - Number(waited.dataset.since)) });
}

/** Advance every "waiting for" clock; called every second. */
export function tickAll() {
  const now = Date.now() / 1000 + state.clockSkew;
  for (const row of state.rows.values()) tick(row, now);
  // A booked visit whose slot begins now moves ahead, as it does in central's queue.
  for (const [slug, dept] of state.departments) {
    const begun = [...dept.waiting.values()].filter((v) => v.slot_start != null && !v.ahead && v.slot_start <= now);
    begun.forEach((v) => { v.ahead = true; });
    if (begun.length) renderQueue(slug);
  }
}

export function addVisit(visit) {
  state.departments.get(visit.department)?.waiting.set(visit.visit_id, visit);
  if (state.departments.has(visit.department)) renderQueue(visit.department);
}

export function removeVisit(visitId, slug) {
  const row = state.rows.get(visitId), dept = state.departments.get(slug);
  const hadFocus = row?.contains(document.activeElement);
  state.rows.delete(visitId);
  dept?.waiting.delete(visitId);
  if (dept) renderQueue(slug); else row?.remove();
  if (hadFocus) $('.department-name', state.sections.get(slug) ?? document)?.focus(); // not lost on <body>
}

/** Offer every other department as a transfer target; closed ones are shown but cannot be chosen. */
export function fillTransfer(select, fromDepartment) {
  select.replaceChildren(new Option(t('Transfer to…'), ''));
  for (const d of state.targets) {
    if (d.slug === fromDepartment) continue;
    const option = new Option(d.open ? d.name : `${d.name} – ${t('Closed')}`, d.slug);
    option.disabled = !d.open; // central refuses closed departments anyway
    select.add(option);
  }
}

// Chrome changes a closed <select> on arrow keys and fires "change" each time, which would transfer
// the citizen to the first department passed. So keyboard users browse with the arrows and confirm
// with Enter, while a choice made with the mouse (or in the opened list) transfers at once.
export function wireTransfer(select, visitId) {
  let browsing = false;
  const transfer = () => {
    if (select.value && send({ type: 'visit.transfer', visit_id: visitId(), department: select.value })) {
      state.ownTransfers.add(visitId());
      announce(t('Transferred'));
    }
    select.value = '';
    browsing = false;
  };
  select.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') { event.preventDefault(); transfer(); }
    else if (event.key === ' ' || event.key === 'F4' || event.altKey) browsing = false; // opens the list
    else if (/^(Arrow\w+|Home|End|Page\w+|\S)$/u.test(event.key)) browsing = true;
  });
  select.addEventListener('change', () => { if (!browsing) transfer(); });
  select.addEventListener('blur', () => { if (browsing) select.value = ''; browsing = false; });
}

/** Pick-up buttons work only while connected and not in a call (central refuses a second call). */
export function updateButtons() {
  const blocked = !isOpen() || !!state.call;
  for (const [slug, section] of state.sections) {
    $('.pickup-next', section).disabled = blocked || !state.departments.get(slug)?.waiting.size;
  }
  for (const row of state.rows.values()) $('.pickup', row).disabled = blocked;
}
