// The cloud's card while it gives way to the NAS (issue 20 (d)), rendered as React renders the
// real App: one sentence with the number of files in flight the status gives, and the NAS named;
// the NAS's own card says nothing of it.
import { describe, expect, it } from 'vitest';
import { card, NAS_AND_CLOUD, renderApp, syncStatus, targetStatus, words } from './app.render';

describe('a destination giving way', () => {
  it('says how many files it sends while the NAS goes first, with the numbers of the status', () => {
    const status = syncStatus({
      targets: {
        nas: targetStatus('NAS', { uploading: 8, sending: { now: 8, chosen: 8, max: 8 } }),
        cloud: targetStatus('Cloud', { uploading: 1, sending: { now: 1, chosen: 16, max: 32, after: 'NAS' } }),
      },
    });
    const html = renderApp({ targets: NAS_AND_CLOUD, page: 'destinations', status });
    expect(words(card(html, 'Cloud'))).toContain('Sending 1 file at once while NAS goes first: this computer cannot keep up with both. Then up to 16 on this link (at most 32).');
    expect(words(card(html, 'NAS'))).toContain('Sending 8 files at once, the number chosen for this link (at most 8).');
    expect(words(card(html, 'NAS'))).not.toContain('goes first');
  });
});
