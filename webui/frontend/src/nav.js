// nav.js: navigation without a page reload, shared by the pages.
let router = () => {};

// setRouter registers the function that shows the page of the address.
export function setRouter(f) {
  router = f;
}

// navigate goes to a front-end address.
export function navigate(href) {
  history.pushState(null, '', href);
  router();
}
