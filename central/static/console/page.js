/* What the console's modules share: the page's elements, the console's state and two ways to tell the clerk. */

export const $ = (selector, root = document) => root.querySelector(selector);

/** Every element with an id in console.html, by camelCase id: ui.bannerText is #banner-text. */
export const ui = {};
for (const node of document.querySelectorAll('main [id]')) ui[node.id.replace(/-(\w)/g, (_, c) => c.toUpperCase())] = node;

export const state = {
  hadSnapshot: false,
  presence: 'available',
  departments: new Map(), // slug -> {slug, name, open, waiting: Map(visit_id -> WaitingVisit)}
  targets: [],            // DepartmentInfo of every department, for transfers
  sections: new Map(),    // slug -> <section>
  rows: new Map(),        // visit_id -> <li>; reused so typing and focus survive list updates
  call: null,             // see call.js
  ownTransfers: new Set(), // visit ids this console transferred, so their arrival elsewhere does not chime
  clockSkew: 0,           // server time minus this PC's time, seconds
};

// Automated tests observe arrivals, chimes (also those a call or a locked audio context keeps silent) and the
// current peer connection here.
export const observed = { alerts: [], chimes: [], pc: null };
window.amtsklingel = observed;

/** Say text to screen readers; clearing first makes them repeat an identical announcement. */
export function announce(text) {
  ui.announcer.textContent = '';
  setTimeout(() => { ui.announcer.textContent = text; }, 50);
}

/** A dismissable banner at the top, for what the clerk must read. */
export function showError(text) { ui.bannerText.textContent = text; ui.banner.hidden = false; }
