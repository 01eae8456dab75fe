// The renderer runs in a browser (or Electron's sandboxed renderer): DOM types, and .svelte
// modules as components (tsc does not read .svelte files; Vite compiles them).
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />

declare module '*.svelte' {
  import type { Component } from 'svelte';
  const component: Component<Record<string, unknown>>;
  export default component;
}
