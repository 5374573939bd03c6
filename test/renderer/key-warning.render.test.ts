// The destination card's lasting line from the last Test connection (issue 19), rendered as React
// renders the real App (server rendering, no browser): a key that can delete keeps an amber line
// with the provider's recipe and the test's whole sentence one click away; a key that cannot, none.
import { describe, expect, it } from 'vitest';
import type { SyncStatus, TargetTested } from '../../src/shared/api';
import { formatTime } from '../../src/renderer/src/lib/format';
import { card, NAS_AND_CLOUD, renderApp, syncStatus, targetStatus, words } from './app.render';

const NOW = Date.now();
const TESTED_AT = NOW - 5 * 60_000;
const RECIPE = { url: 'https://min.io/docs/minio/linux/administration/identity-access-management/policy-based-access-control.html', text: 'MinIO policies (mc admin policy)' };
const CAN_DELETE: TargetTested = {
  at: TESTED_AT,
  can_delete: 'yes',
  findings: [
    {
      level: 'warn',
      message: 'Anyone with this key can delete every backup in "nas": ransomware that finds it on this computer can erase the copies too. Give Triplicate a key that may write, read and list, but not delete.',
      link: RECIPE,
      short: 'This key can delete the backups. Make a key that cannot:',
    },
  ],
};
const CANNOT: TargetTested = { at: TESTED_AT, can_delete: 'no', findings: [{ level: 'good', message: 'This key cannot delete, so a stolen copy of it cannot erase the backups.' }] };

function statusWith(nas: TargetTested | undefined, cloud: TargetTested | undefined): SyncStatus {
  return syncStatus({ targets: { nas: targetStatus('NAS', nas ? { tested: nas } : {}), cloud: targetStatus('Cloud', cloud ? { tested: cloud } : {}) } });
}

function render(status: SyncStatus): string {
  return renderApp({ targets: NAS_AND_CLOUD, page: 'destinations', status });
}

describe('Destinations: what the last Test connection found about the key', () => {
  it('a key that can delete keeps an amber line with the recipe on its card only, and the whole finding one click away', () => {
    const html = render(statusWith(CAN_DELETE, CANNOT));
    const nas = card(html, 'NAS');
    expect(nas).toMatch(/<div class="key-warn" role="note">/);
    expect(words(nas)).toContain('This key can delete the backups. Make a key that cannot: MinIO policies (mc admin policy)');
    expect(nas).toContain(`<a href="${RECIPE.url}" target="_blank" rel="noreferrer">${RECIPE.text}</a>`);
    expect(nas).toMatch(/<details><summary>Why<\/summary>/);
    expect(words(nas)).toContain(`Anyone with this key can delete every backup in "nas"`);
    expect(words(nas)).toContain(`Found by Test connection at ${formatTime(TESTED_AT)}.`);
    const cloud = card(html, 'Cloud');
    expect(cloud).not.toContain('key-warn');
    expect(words(cloud)).not.toMatch(/can delete|cannot delete/);
  });

  it('no line before any test, nor after a test with a key that cannot delete', () => {
    for (const st of [statusWith(undefined, undefined), statusWith(CANNOT, CANNOT)]) {
      const html = render(st);
      expect(html).not.toContain('key-warn');
      expect(words(html)).not.toContain('This key can delete');
    }
  });
});
