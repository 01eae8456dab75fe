// The Content-Security-Policy of the studio's pages, in the browser (afd serve) and in
// the Electron window: only the app's own scripts, no remote hosts, no plugins, no
// framing. Inline styles are allowed because Svelte sets style attributes; inline
// scripts and eval are not.
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
