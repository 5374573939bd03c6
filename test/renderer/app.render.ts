// The real operator UI rendered as React renders it on a server (no browser), from a store state
// the test sets: what a person reads, without a window.
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { afterEach } from 'vitest';
import { App } from '../../src/renderer/src/App';
import { useApp, type AppState } from '../../src/renderer/src/store';

// Server rendering reads the store's initial state (useSyncExternalStore's server snapshot).
const initial = useApp.getInitialState();
const saved = { ...initial };

/** Render the App with `state` over the store's initial one (online); the state is put back after each test. */
export function render(state: Partial<AppState>): string {
  Object.assign(initial, { phase: 'online', ...state });
  return renderToStaticMarkup(createElement(App));
}

afterEach(() => {
  Object.assign(initial, saved);
});

/** The words a person reads, tags and React's text separators gone. */
export function words(html: string): string {
  return html
    .replace(/<!-- -->/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#x27;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}
