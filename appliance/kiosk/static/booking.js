/* The appointment screen (appliance/controller/booking.py): one step at a time, as the controller says.
 *
 *   scanning  the camera's picture (mirrored, so the citizen can aim) and how to hold the QR code;
 *             after a while without a code, how to hold it better and the way to the keypad
 *   typing    an on-screen keypad of the code's alphabet (Crockford's base 32: no I, L, O, U);
 *             the letters typed stay on the page until OK sends them
 *   checking  a moment while central looks the code up
 *   found     the appointment's day, time and office; confirm to join the waiting room
 *   problem   why not, and when the appointment is where that is the reason
 *
 * Contract with kiosk.js: createBookingScreen(ctx) with the page's t(), ui, post(), formatters;
 * render(view) draws the step; cameraCanvas(view) names the canvas for the camera's picture, if any. */

const N_ = (msgid) => msgid; // marks a msgid for the catalogue, translated later by t()
const KEYS = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const OK = N_('OK');
const CODE_LENGTH = 8;
const CAMERA_WIDTH = 640; // canvas pixels: the picture is scaled down on the unit to 180 lines anyway

const HINTS = {
  no_code_seen: N_('No code recognised yet. Hold it flat and still, about 20 cm from the camera. Or type the code.'),
  not_a_booking: N_('This QR code is not an appointment of the town hall. Please show the QR code of your appointment confirmation.'),
  invalid_code: N_('This is not a valid code. It has 8 letters and digits. Please check it.'),
  no_camera: N_('The camera cannot read codes at the moment. Please type the code.'),
};
const PROBLEMS = {
  booking_unknown: [N_('We could not find this appointment.'),
    N_('Please check the code. An appointment can be used only once, and it may have been cancelled.')],
  booking_other_time: [N_('Your appointment is at another time.'),
    N_('Please come back shortly before then. You can also talk to an office now without an appointment.')],
  closed: [N_('This office is closed right now.'), N_('Please come back during office hours.')],
  rate_limited: [N_('Please wait a moment.'), N_('Too many codes were tried at this kiosk. Please try again in a minute.')],
  unreachable: [N_('The town hall could not be reached.'), N_('Please try again in a moment.')],
};
// What the citizen can do next, per problem: look again, type the code, or only go back.
const RETRY = new Set(['booking_unknown', 'rate_limited', 'unreachable']);

/** "7K3M9QX2" -> "7K3M-9QX2"; unfinished codes show what is still missing as underscores. */
export function shownCode(code, { pad = false } = {}) {
  const text = pad ? code.padEnd(CODE_LENGTH, '_') : code;
  return text.length > 4 ? `${text.slice(0, 4)}-${text.slice(4)}` : text;
}

export function createBookingScreen({ t, ui, post, lang, departmentName }) {
  let typed = '';
  let lastStep = null;

  const keys = [...KEYS].map((key) => keyButton(key, key));
  const erase = keyButton('⌫', 'backspace');
  erase.dataset.tLabel = N_('Delete the last character'); // kiosk.js's applyStrings() translates it
  erase.setAttribute('aria-label', t(erase.dataset.tLabel));
  const ok = keyButton(t(OK), 'ok');
  ok.dataset.t = OK;
  ok.classList.add('key-ok');
  keys.push(erase, ok);
  ui.keypad.replaceChildren(...keys);

  function keyButton(text, key) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'key';
    button.dataset.key = key;
    button.textContent = text;
    return button;
  }

  function showTyped() {
    ui.bookingTyped.textContent = shownCode(typed, { pad: true });
  }

  function typeKey(key) {
    if (key === 'backspace') typed = typed.slice(0, -1);
    else if (typed.length < CODE_LENGTH && KEYS.includes(key)) typed += key;
    showTyped();
  }

  ui.keypad.addEventListener('click', (event) => {
    const key = event.target.closest('[data-key]')?.dataset.key;
    if (key === 'ok') post('booking_code', typed || '-'); // the controller says what is wrong with it
    else if (key) typeKey(key);
  });
  // In the demo and for a keyboard, letters and digits type too (Space and Enter stay the call button).
  document.addEventListener('keydown', (event) => {
    if (lastStep !== 'typing' || event.ctrlKey || event.altKey || event.metaKey) return;
    if (event.key === 'Backspace') typeKey('backspace');
    else if (/^[0-9a-zA-Z]$/.test(event.key)) typeKey(event.key.toUpperCase());
  });

  function when(booking) {
    const start = booking.slot_start ? new Date(booking.slot_start) : null;
    if (!start || Number.isNaN(start.getTime())) return '';
    const end = booking.slot_end ? new Date(booking.slot_end) : null;
    const format = new Intl.DateTimeFormat(lang(), { weekday: 'long', day: 'numeric', month: 'long', hour: '2-digit',
      minute: '2-digit' });
    return end && !Number.isNaN(end.getTime()) ? format.formatRange(start, end) : format.format(start);
  }

  function render(view) {
    const booking = view.booking || { step: 'scanning' };
    const step = booking.step;
    ui.booking.dataset.step = step;
    for (const part of ui.booking.querySelectorAll('[data-step-part]')) part.hidden = part.dataset.stepPart !== step;
    if (step === 'typing' && lastStep !== 'typing') typed = '';
    lastStep = step;
    const hint = HINTS[booking.hint] ? t(HINTS[booking.hint]) : '';
    if (step === 'scanning') show(ui.bookingScanHint, hint);
    if (step === 'typing') {
      show(ui.bookingTypeHint, hint);
      ui.bookingToScan.hidden = booking.hint === 'no_camera';
      showTyped();
    }
    const office = departmentName(view, booking.department);
    if (step === 'found') {
      ui.bookingWhen.textContent = when(booking);
      ui.bookingOffice.textContent = office;
      ui.bookingCode.textContent = booking.code ? shownCode(booking.code) : '';
    }
    if (step === 'problem') {
      const [title, text] = PROBLEMS[booking.problem] || PROBLEMS.unreachable;
      ui.bookingProblemTitle.textContent = t(title);
      ui.bookingProblemText.textContent = t(text);
      const at = booking.problem === 'booking_other_time' ? when(booking) : '';
      show(ui.bookingProblemWhen, at && (office ? `${at} · ${office}` : at));
      ui.bookingRetry.hidden = !RETRY.has(booking.problem);
      ui.bookingRetryType.hidden = booking.problem !== 'booking_unknown';
    }
  }

  const cameraCanvas = (view) => (view.screen === 'booking' && view.booking?.step === 'scanning' ? ui.bookingCanvas : null);
  return { render, cameraCanvas, cameraWidth: CAMERA_WIDTH };
}

function show(node, text) {
  node.hidden = !text;
  node.textContent = text || '';
}
