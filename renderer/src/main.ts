// Entry point: picks the transport (Electron bridge or HTTP) and mounts the app.
import { mount } from 'svelte';
import { createApi } from './api.ts';
import App from './App.svelte';
import './app.css';

mount(App, { target: document.getElementById('app') as HTMLElement, props: { api: createApi() } });
