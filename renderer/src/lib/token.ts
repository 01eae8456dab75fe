// The access token of `afd serve`: it arrives once in the page's URL (?token=...), is kept
// in sessionStorage for reloads, and is removed from the visible URL (and so from history
// and screenshots).

export const TOKEN_QUERY = 'token';
export const TOKEN_STORAGE_KEY = 'afd.token';

/** The token to use and the URL to show instead of `href` (null: leave the URL alone). */
export function takeToken(href: string, stored: string | null): { token: string | null; cleanUrl: string | null } {
  const url = new URL(href);
  const fromUrl = url.searchParams.get(TOKEN_QUERY);
  if (fromUrl === null || fromUrl === '') return { token: stored, cleanUrl: null };
  url.searchParams.delete(TOKEN_QUERY);
  return { token: fromUrl, cleanUrl: `${url.pathname}${url.search}${url.hash}` };
}
