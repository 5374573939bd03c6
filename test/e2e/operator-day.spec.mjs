/* global window, location, requestAnimationFrame, DataTransfer, DragEvent */
// The operator's day, in the web console against `triplicate serve` with two real s3rver targets:
// all green; the NAS stops and the sentence says so; retry; add a folder; the engine restarts and
// the page reconnects; drop files and watch them sync; restore a deleted file; a paused Cloud and
// files deleted here, with a true sentence; sign in from another browser; 10,000 dropped files do
// not freeze the page. Screenshots of each page: docs/screenshots/.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../../src/shared/client.ts';
import { startS3 } from '../helpers/s3.ts';
import { dropFiles, freePort, launchBrowser, samplePhoto, shot, startEngine, waitFor } from './lib.mjs';

const PAGES = ['overview', 'folders', 'destinations', 'activity', 'browse', 'restore', 'sharing', 'media', 'settings'];

export default async function operatorDay(t) {
  const { Skip } = t;
  const base = mkdtempSync(join(tmpdir(), 'trip-e2e-'));
  const shots = join(t.root, 'docs', 'screenshots');
  const photos = join(base, 'photos');
  const dataDir = join(base, 'data');
  const logDir = join(t.root, '.tmp', 'e2e');
  for (let i = 1; i <= 6; i++) await samplePhoto(join(photos, i <= 3 ? 'Gallery 2' : 'Warehouse', `Object ${String(i).padStart(4, '0')}.jpg`), i);

  const nas = await startS3();
  const cloud = await startS3();
  const port = await freePort();
  // The engine reads <data dir>/config.json.
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(
    join(dataDir, 'config.json'),
    JSON.stringify({
      version: 1,
      siteName: 'City Museum',
      roots: [{ id: 'photos', label: 'Collection photos', path: photos }],
      targets: [nas.target('nas', { label: 'NAS', priority: 1 }), cloud.target('cloud', { label: 'Cloud', preset: 'other', priority: 2 })],
      sync: { stabilityMs: 300, backoffSeconds: [1, 2, 3], rescanIntervalMinutes: 0 },
      server: { adminPort: port, downloadPort: 0 },
    }),
  );

  let engine = await startEngine({ root: t.root, dataDir, port, logDir });
  const api = () => new ApiClient({ baseUrl: engine.adminUrl, token: engine.token });
  const browser = await launchBrowser({ headed: t.headed });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
  const page = await ctx.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const hero = page.locator('#summary');
  const go = async (p) => {
    await page.evaluate((p) => (location.hash = `#/${p}`), p);
    await page.locator('#page-title').waitFor();
  };
  const notAvailable = async () => (await page.locator('.not-available').count()) > 0;
  // On a failure, keep a picture of the page for whoever reads the log.
  const test = (name, fn, opts) =>
    t.test(
      name,
      async () => {
        try {
          await fn();
        } catch (e) {
          if (e?.name !== 'Skip') await shot(page, logDir, `failed-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}`).catch(() => undefined);
          throw e;
        }
      },
      opts,
    );

  try {
    await test('opens with the token from the link, then forgets it from the address bar', async () => {
      await page.goto(`${engine.adminUrl}/#token=${engine.token}`);
      await hero.waitFor({ timeout: 20_000 });
      if (page.url().includes('token=')) throw new Error(`the token is still in the address bar: ${page.url()}`);
      const stored = await page.evaluate(() => sessionStorage.getItem('triplicate.token'));
      if (stored !== engine.token) throw new Error('the token was not kept for this tab');
    }, { always: true });

    await test('sees all green: every file safe in 3 places', async () => {
      await waitFor(async () => /All 6 files .* are safe in 3 places/.test(await hero.innerText()), { timeout: 60_000, what: 'the all-safe sentence' });
      await page.getByText('All safe').first().waitFor();
      const cards = await page.locator('.copy-card h2').allInnerTexts();
      if (cards.join('|') !== 'This computer|NAS|Cloud') throw new Error(`the three copies are not side by side: ${cards}`);
      const big = await page.locator('.copy-card .copy-big').allInnerTexts();
      if (!big.every((b) => b.startsWith('6'))) throw new Error(`each copy should count 6 files: ${big}`);
      for (const p of PAGES) {
        await go(p);
        await page.waitForTimeout(p === 'activity' || p === 'overview' ? 800 : 500);
        await shot(page, shots, `${String(PAGES.indexOf(p) + 1).padStart(2, '0')}-${p}`);
      }
      await go('overview');
      await page.emulateMedia({ colorScheme: 'dark' });
      await page.waitForTimeout(300);
      await shot(page, shots, '01-overview-dark');
      await go('activity');
      await page.waitForTimeout(500);
      await shot(page, shots, '04-activity-dark');
      await page.emulateMedia({ colorScheme: 'light' });
      await go('overview');
    });

    await test('stops the NAS and reads the sentence that says so', async () => {
      await nas.stop();
      await samplePhoto(join(photos, 'Gallery 2', 'New arrival 0007.jpg'), 7);
      await waitFor(async () => /waiting for NAS: it has not answered/.test(await hero.innerText()), { timeout: 60_000, what: 'the sentence saying the NAS does not answer' });
      const sentence = await hero.innerText();
      const badge = await page.locator('.hero .health-badge').innerText();
      if (/All safe/.test(badge)) throw new Error('the health still says All safe');
      await page.locator('.copy-card.state-offline h2', { hasText: 'NAS' }).waitFor({ timeout: 30_000 });
      await shot(page, shots, '10-overview-nas-down');
      await go('destinations');
      await page.locator('.target-card', { hasText: 'NAS' }).getByText('Not answering').waitFor({ timeout: 10_000 });
      await shot(page, shots, '11-destinations-nas-down');
      console.log(`      sentence: "${sentence}"`);
    });

    await test('starts the NAS again, retries, and everything is green again', async () => {
      await nas.start();
      await go('activity');
      const retryAll = page.getByRole('button', { name: /Retry all failed/ });
      await retryAll.waitFor();
      if (await retryAll.isEnabled()) await retryAll.click();
      await go('overview');
      // the engine retries an offline target by itself within its backoff; a retry click is immediate
      await waitFor(async () => /All 7 files .* are safe in 3 places/.test(await hero.innerText()), { timeout: 90_000, what: 'all 7 files safe again' });
    });

    const second = join(base, 'Donations 2025');
    await test('adds a folder and sees its files counted and copied', async () => {
      await samplePhoto(join(second, 'Smith letter.jpg'), 21);
      await samplePhoto(join(second, 'Smith portrait.jpg'), 22);
      await go('folders');
      await page.getByRole('button', { name: 'Add a folder' }).first().click();
      const dialog = page.getByRole('dialog');
      await dialog.getByLabel('Folder', { exact: true }).fill(second);
      await dialog.getByLabel('Name').fill('Donations');
      await shot(page, shots, '12-folders-add');
      await dialog.getByRole('button', { name: 'Add folder' }).click();
      await dialog.waitFor({ state: 'detached' });
      const card = page.locator('.root-card', { hasText: 'Donations' });
      await card.waitFor();
      await waitFor(async () => /2\s+files/.test(await card.innerText()), { timeout: 30_000, what: 'the new folder counting 2 files' });
      await go('overview');
      await waitFor(async () => /All 9 files .* are safe in 3 places/.test(await hero.innerText()), { timeout: 60_000, what: 'all 9 files safe' });
    });

    await test('says when the engine is gone and reconnects when it is back', async () => {
      await engine.stop();
      const banner = page.getByRole('alert').filter({ hasText: 'The backup engine is not answering' });
      await banner.waitFor({ timeout: 20_000 });
      await shot(page, shots, '13-engine-restarting');
      engine = await startEngine({ root: t.root, dataDir, port, logDir });
      await page.getByRole('button', { name: 'Try now' }).click().catch(() => undefined);
      await banner.waitFor({ state: 'detached', timeout: 45_000 });
      await waitFor(async () => /safe in 3 places/.test(await hero.innerText()), { timeout: 30_000, what: 'the status after reconnecting' });
    });

    await test('drops files on the window and watches them sync', async () => {
      await go('overview');
      const files = [];
      for (let i = 0; i < 3; i++) files.push({ name: `Dropped scan ${i + 1}.jpg`, type: 'image/jpeg', bytes: await samplePhoto(null, 40 + i) });
      await dropFiles(page, files);
      const dialog = page.getByRole('dialog', { name: /Back up 3 dropped items/ });
      await dialog.waitFor({ timeout: 5000 });
      await dialog.getByLabel(/Collection photos/).check();
      await dialog.getByLabel(/Sub-folder/).fill('Scans');
      await shot(page, shots, '14-drop-choose-folder');
      await dialog.getByRole('button', { name: 'Copy and back up' }).click();
      const panel = page.locator('.import-panel');
      await panel.waitFor();
      await waitFor(async () => !/Copying into/.test(await panel.locator('h2').innerText()), { timeout: 30_000, what: 'the copy to finish' });
      const text = await panel.innerText();
      if (/cannot take uploads yet/.test(text)) {
        await panel.getByRole('button', { name: 'Close' }).click();
        throw new Skip('the engine has no uploadFile route (PUT /api/admin/upload) yet');
      }
      if (!/Copied into Collection photos/.test(text) || !/3 of 3/.test(text)) throw new Error(`the drop did not copy 3 files: ${text}`);
      await shot(page, shots, '15-drop-copied');
      await panel.getByRole('button', { name: 'Close' }).click();
      for (const f of files) if (!existsSync(join(photos, 'Scans', f.name))) throw new Error(`${f.name} is not in the folder`);
      await go('activity');
      await page.getByRole('searchbox').fill('Dropped scan');
      await waitFor(async () => (await page.locator('.activity-row').count()) === 3, { timeout: 15_000, what: '3 dropped files listed' });
      await waitFor(async () => (await page.locator('.activity-row .chip-synced', { hasText: 'NAS' }).count()) === 3 && (await page.locator('.activity-row .chip-synced', { hasText: 'Cloud' }).count()) === 3, {
        timeout: 60_000,
        what: 'the dropped files safe on NAS and Cloud',
      });
      await shot(page, shots, '16-activity-dropped-synced');
      await page.getByRole('searchbox').fill('');
    });

    await test('deletes a file by mistake and restores it', async () => {
      const victim = join(photos, 'Warehouse', 'Object 0005.jpg');
      const bytes = readFileSync(victim);
      await unlink(victim);
      await go('restore');
      await waitFor(async () => (await api().call('status')).missing_local_files >= 1, { timeout: 30_000, what: 'the engine to notice the missing file' });
      const button = page.getByRole('button', { name: /Bring back all 1\b/ });
      await button.waitFor({ timeout: 15_000 });
      await page.locator('.pick-row', { hasText: 'Object 0005.jpg' }).waitFor({ timeout: 15_000 });
      await shot(page, shots, '17-restore-missing');
      await button.click();
      await page.waitForTimeout(500);
      if (await notAvailable()) throw new Skip('the engine has no restoreMissing route (POST /api/admin/restore/missing) yet');
      await waitFor(() => existsSync(victim) && readFileSync(victim).equals(bytes), { timeout: 60_000, what: 'the file back on disk, byte for byte' });
      await page.getByText(/Finished/).first().waitFor({ timeout: 30_000 });
      // the list of missing files follows the engine's events: the restored file leaves it
      await page.locator('.pick-row', { hasText: 'Object 0005.jpg' }).waitFor({ state: 'detached', timeout: 15_000 });
      await shot(page, shots, '18-restore-done');
    });

    await test('checks the copies now and reads that they are fine', async () => {
      await go('restore');
      await page.getByRole('button', { name: 'Check now' }).click();
      const report = page.locator('.verify-report');
      await report.waitFor({ timeout: 60_000 }).catch(async () => {
        if (await notAvailable()) throw new Skip('the engine has no verifyNow route yet');
        throw new Error('no check report appeared');
      });
      if (!(await report.evaluate((el) => el.classList.contains('ok')))) throw new Error(`the check found problems: ${await report.innerText()}`);
      const rows = await report.locator('tbody tr').allInnerTexts();
      if (rows.length !== 2 || !rows.some((r) => r.startsWith('NAS')) || !rows.some((r) => r.startsWith('Cloud'))) throw new Error(`expected NAS and Cloud rows: ${rows}`);
      await report.scrollIntoViewIfNeeded();
      await shot(page, shots, '22-restore-check');
    });

    await test('pauses the Cloud and deletes two files: the sentence agrees with the cards', async () => {
      await go('overview');
      const card = (label) => page.locator('.copy-card', { has: page.locator('h2', { hasText: new RegExp(`^${label}$`) }) });
      const big = async (label) => Number((await card(label).locator('.copy-big').innerText()).replace(/[^\d]/g, ''));
      await api().call('pauseTarget', { params: { id: 'cloud' } });
      await samplePhoto(join(photos, 'Gallery 2', 'Late arrival 0030.jpg'), 30);
      // the NAS copies it, the Cloud waits: the sentence names the paused Cloud, not a copy to the NAS
      await waitFor(async () => (await hero.innerText()) === '1 file is waiting for Cloud (paused); NAS is up to date.', { timeout: 60_000, what: 'the sentence naming the paused Cloud' });
      await card('Cloud').getByText('1 file to copy').waitFor({ timeout: 15_000 });
      await card('Cloud').getByText('Paused').waitFor();
      let s = await api().call('status');
      if ((await big('NAS')) !== s.total_files || (await big('Cloud')) !== s.total_files - 1) throw new Error(`cards NAS ${await big('NAS')}, Cloud ${await big('Cloud')} for ${s.total_files} files`);
      if (s.pending !== 1 || s.pending + s.uploading + s.synced + s.failed + s.skipped !== s.total_files) throw new Error(`file counts: ${JSON.stringify(s)}`);
      // two files deleted here: never "All ... safe in 3 places"
      await unlink(join(photos, 'Warehouse', 'Object 0004.jpg'));
      await unlink(join(photos, 'Warehouse', 'Object 0006.jpg'));
      const both = '1 file is waiting for Cloud (paused); NAS is up to date. 2 files are no longer on this computer and are kept on NAS and Cloud.';
      await waitFor(async () => (await hero.innerText()) === both, { timeout: 60_000, what: 'the sentence naming the paused Cloud and the 2 files gone from here' });
      await card('This computer').getByText('2 files are missing here.').waitFor({ timeout: 15_000 });
      s = await api().call('status');
      if ((await big('This computer')) !== s.total_files - 2) throw new Error(`this computer shows ${await big('This computer')} of ${s.total_files} files`);
      const badge = await page.locator('.hero .health-badge').innerText();
      if (!/Paused/.test(badge)) throw new Error(`the badge says "${badge}"`);
      await shot(page, shots, '23-overview-cloud-paused-files-missing');
      // the Cloud resumed: it catches up; 2 files are in 2 places, the others in 3, under an amber badge
      await api().call('resumeTarget', { params: { id: 'cloud' } });
      const settled = `${s.total_files - 2} files are safe in 3 places; 2 are no longer on this computer and are kept on NAS and Cloud.`;
      await waitFor(async () => (await hero.innerText()) === settled, { timeout: 60_000, what: `"${settled}"` });
      await page.locator('.hero .health-badge', { hasText: 'A copy is behind' }).waitFor({ timeout: 10_000 });
      if ((await big('Cloud')) !== s.total_files) throw new Error(`the Cloud card shows ${await big('Cloud')} of ${s.total_files} files`);
      // once the copying stopped, no rate stays on the card
      await waitFor(async () => (await card('Cloud').locator('.target-state').innerText()).trim() === 'Working', { timeout: 15_000, what: 'the Cloud card without a rate' });
      console.log(`      sentence: "${settled}"`);
    });

    await test('adds a destination: Test connection says which step fails, then works', async () => {
      const third = await startS3();
      try {
        await go('destinations');
        await page.getByRole('button', { name: 'Add a destination' }).first().click();
        const dialog = page.getByRole('dialog');
        const kinds = await dialog.getByLabel('Kind of storage').locator('option').allInnerTexts();
        if (!kinds.some((k) => /MinIO/.test(k)) || !kinds.some((k) => /R2/.test(k))) throw new Error(`presets missing: ${kinds}`);
        await dialog.getByLabel('Kind of storage').selectOption('minio');
        await dialog.getByLabel('Name').fill('Second NAS');
        await dialog.getByLabel('Address').fill(third.endpoint);
        // s3rver checks the access key id (it does not verify v4 signatures): a wrong key must fail
        await dialog.getByLabel('Access key').fill('WRONG-KEY-ID');
        await dialog.getByLabel('Secret key').fill('S3RVER');
        await dialog.getByRole('button', { name: 'Test connection' }).click();
        const result = dialog.locator('.test-result');
        await result.waitFor({ timeout: 30_000 });
        if (!(await result.evaluate((el) => el.classList.contains('bad')))) throw new Error('a wrong access key passed the test');
        if ((await result.locator('li.bad').count()) < 1) throw new Error('no step is marked as failed');
        await shot(page, shots, '20-destination-test-failed');
        await dialog.getByLabel('Access key').fill('S3RVER');
        await dialog.getByRole('button', { name: 'Test connection' }).click();
        await dialog.locator('.test-result.ok').waitFor({ timeout: 30_000 });
        const steps = await dialog.locator('.test-steps li.ok').count();
        if (steps < 2) throw new Error(`expected each step shown, got ${steps}`);
        await shot(page, shots, '21-destination-test-ok');
        await dialog.getByRole('button', { name: 'Add destination' }).click();
        await dialog.waitFor({ state: 'detached', timeout: 15_000 });
        const card = page.locator('.target-card', { hasText: 'Second NAS' });
        await card.waitFor();
        await waitFor(async () => /Working/.test(await card.innerText()), { timeout: 60_000, what: 'the new destination working' });
        // and remove it again: nothing is deleted, the confirmation says so
        await card.getByRole('button', { name: 'Remove' }).click();
        const confirm = page.getByRole('dialog', { name: /Remove Second NAS/ });
        await confirm.getByText('Nothing is deleted').waitFor();
        await confirm.getByRole('button', { name: 'Remove destination' }).click();
        await card.waitFor({ state: 'detached', timeout: 15_000 });
      } finally {
        await third.dispose();
      }
    });

    await test('signs in with the console password in a browser without the token', async () => {
      await api().call('setAdminPassword', { body: { password: 'correct horse battery' } });
      const other = await browser.newContext({ viewport: { width: 1000, height: 700 } });
      const p2 = await other.newPage();
      await p2.goto(`${engine.adminUrl}/`);
      // On loopback without a token the engine answers 401: the sign-in form shows.
      await p2.getByRole('heading', { name: 'Sign in' }).waitFor({ timeout: 15_000 });
      await p2.getByLabel('Password').fill('wrong password');
      await p2.getByRole('button', { name: 'Sign in' }).click();
      await p2.getByText('That password is not right').waitFor();
      await shot(p2, shots, '19-sign-in');
      await p2.getByLabel('Password').fill('correct horse battery');
      await p2.getByRole('button', { name: 'Sign in' }).click();
      await p2.locator('#summary').waitFor({ timeout: 15_000 });
      await other.close();
    });

    await test('stays responsive while 10,000 dropped files are copied', async () => {
      await go('overview');
      const bulk = join(base, 'Bulk');
      await api().call('addRoot', { body: { id: 'bulk', label: 'Bulk import', path: bulk } }).catch(async () => {
        const { mkdir } = await import('node:fs/promises');
        await mkdir(bulk, { recursive: true });
        await api().call('addRoot', { body: { id: 'bulk', label: 'Bulk import', path: bulk } });
      });
      await page.evaluate(() => {
        const dt = new DataTransfer();
        for (let i = 0; i < 10_000; i++) dt.items.add(new File([`file ${i}\n`], `note-${String(i).padStart(5, '0')}.txt`, { type: 'text/plain' }));
        window.__bulk = dt;
      });
      // measure the longest gap between animation frames while the drop is handled and copied
      await page.evaluate(() => {
        window.__gaps = [];
        let last = performance.now();
        const tick = (now) => {
          window.__gaps.push(now - last);
          last = now;
          if (window.__gaps.length < 100_000 && !window.__stopFrames) requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
        for (const type of ['dragenter', 'dragover', 'drop']) window.dispatchEvent(new DragEvent(type, { dataTransfer: window.__bulk, bubbles: true, cancelable: true }));
      });
      const dialog = page.getByRole('dialog', { name: /Back up 10,000 dropped items/ });
      await dialog.waitFor({ timeout: 10_000 });
      await dialog.getByLabel(/Bulk import/).check();
      await dialog.getByRole('button', { name: 'Copy and back up' }).click();
      const panel = page.locator('.import-panel');
      await page.waitForTimeout(4000);
      const text = await panel.innerText();
      if (/cannot take uploads yet/.test(text)) {
        await panel.getByRole('button', { name: 'Close' }).click();
        throw new Skip('the engine has no uploadFile route (PUT /api/admin/upload) yet');
      }
      // the page answers clicks while copying: open another page and come back
      const t0 = Date.now();
      await go('folders');
      await go('overview');
      const navMs = Date.now() - t0;
      const gaps = await page.evaluate(() => {
        window.__stopFrames = true;
        return window.__gaps;
      });
      await panel.getByRole('button', { name: 'Stop' }).click().catch(() => undefined);
      const worst = Math.max(...gaps.slice(1));
      const done = Number((/([\d,]+) of/.exec(text)?.[1] ?? '0').replace(/,/g, ''));
      console.log(`      frames: ${gaps.length}, longest gap ${worst.toFixed(0)} ms; page switch ${navMs} ms; ${done} files copied in 4 s`);
      if (worst > 500) throw new Error(`the page froze for ${worst.toFixed(0)} ms`);
      if (navMs > 2000) throw new Error(`switching pages took ${navMs} ms while copying`);
      if (done < 1) throw new Error('no file was copied in 4 seconds');
    });

    if (pageErrors.length) {
      await test('no uncaught errors in the page', async () => {
        throw new Error(pageErrors.slice(0, 5).join('\n'));
      });
    }
  } finally {
    await browser.close().catch(() => undefined);
    await engine.stop().catch(() => undefined);
    await nas.dispose().catch(() => undefined);
    await cloud.dispose().catch(() => undefined);
    rmSync(base, { recursive: true, force: true });
  }
}
