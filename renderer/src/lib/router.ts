// Views by hash (#/datasets, #/results/3): bookmarkable, and the back button works.

export const VIEWS = [
  { id: 'datasets', label: 'Datasets', key: '1' },
  { id: 'models', label: 'Models', key: '2' },
  { id: 'experiments', label: 'Experiments', key: '3' },
  { id: 'compare', label: 'Compare', key: '4' },
  { id: 'results', label: 'Results', key: '5' },
  { id: 'settings', label: 'Settings', key: '6' },
] as const;

export type ViewId = (typeof VIEWS)[number]['id'];

export interface Route {
  view: ViewId;
  /** The id after the view (an experiment for results and experiments), if any. */
  id: number | null;
}

export function parseHash(hash: string): Route {
  const [name, idText] = hash.replace(/^#\/?/, '').split('/');
  const view = VIEWS.find((v) => v.id === name)?.id ?? 'datasets';
  const id = idText !== undefined && /^\d+$/.test(idText) ? Number(idText) : null;
  return { view, id };
}

export function hashOf(route: Route): string {
  return `#/${route.view}${route.id === null ? '' : `/${route.id}`}`;
}

/** Alt+1..6 switch views (Alt so that the compare view's A/B/T/S keys stay free). */
export function viewForShortcut(e: { key: string; code?: string; altKey: boolean; ctrlKey: boolean; metaKey: boolean }): ViewId | null {
  if (!e.altKey || e.ctrlKey || e.metaKey) return null;
  // e.code too: on some layouts Alt+1 types another character.
  return VIEWS.find((v) => v.key === e.key || `Digit${v.key}` === e.code)?.id ?? null;
}
