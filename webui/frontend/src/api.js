// api.js: the JSON API of autonode ui (see the Go package webui).

// ApiError carries the server's {"error": ...} message and status.
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// get fetches a JSON route; params (an object) become the query string,
// leaving out empty values.
export async function get(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== '' && v !== null && v !== undefined) q.set(k, v);
  }
  const url = q.toString() ? `${path}?${q}` : path;
  const res = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  let body = null;
  try {
    body = await res.json();
  } catch {
    throw new ApiError(res.status, `${url}: ${res.status} ${res.statusText}`);
  }
  if (!res.ok) throw new ApiError(res.status, body && body.error ? body.error : `${url}: ${res.status}`);
  return body;
}
