// What Test connection found about a destination's key (issue 19) stays on its card: kept by the
// engine across restarts, taken from the form's test when those settings are saved, and dropped
// when the key or the address change. Real engine, real s3rver; the SigV4 proxy plays a key that
// may not delete (s3rver checks no policy).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/main/engine/engine';
import { ApiClient } from '../../src/shared/client';
import type { S3TargetConfig } from '../../src/shared/config';
import { startEngine, writeConfig } from '../helpers/engine';
import { startS3 } from '../helpers/s3';
import { startSigV4Proxy, type ProxyOptions } from '../helpers/sigv4-proxy';
import { useTeardown } from '../helpers/teardown';

const td = useTeardown();

const refuseDeletes: ProxyOptions['answer'] = (req) =>
  req.method === 'DELETE' ? { status: 403, body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>proxy</RequestId></Error>' } : undefined;

const MINIO_RECIPE = { url: 'https://min.io/docs/minio/linux/administration/identity-access-management/policy-based-access-control.html', text: 'MinIO policies (mc admin policy)' };

describe('the last Test connection of a destination', () => {
  it('stays across restarts, follows the form to "Save", and goes when the key or the address change', async () => {
    const base = td.dir('trip-keycheck-');
    const data = join(base, 'data');
    const s3 = td.add(await startS3({ buckets: ['nas'] }));
    const proxy = td.add(await startSigV4Proxy(s3.endpoint, { S3RVER: 'S3RVER' }, { answer: refuseDeletes }));
    const nas: S3TargetConfig = s3.target('nas', { label: 'NAS' });
    let engine: Engine = td.add(await startEngine(data, { targets: [nas] }));
    const client = () => new ApiClient({ baseUrl: engine.endpoints.adminUrl!, token: engine.token });
    const restart = async () => {
      await engine.stop();
      td.forget(engine);
      engine = td.add(await startEngine(data));
    };
    const tested = () => engine.status().targets.nas?.tested;

    expect(tested()).toBeUndefined();
    const r = await client().call('testTargetById', { params: { id: 'nas' } });
    expect(r.can_delete).toBe('yes');
    expect(tested()).toMatchObject({ can_delete: 'yes', findings: [{ level: 'warn', short: 'This key can delete the backups. Make a key that cannot:', link: MINIO_RECIPE }] });
    expect(tested()!.findings[0]!.message).toMatch(/^Anyone with this key can delete every backup in "nas"/);
    expect((await client().call('status')).targets.nas?.tested?.can_delete).toBe('yes');
    // kept in the catalog with a fingerprint of the settings: the key id itself stays out of it
    expect(engine.catalog.kvGet('key-checks')).toMatch(/"sig":"[0-9a-f]{64}"/);
    expect(engine.catalog.kvGet('key-checks')).not.toContain('S3RVER');

    await restart();
    expect(tested()).toMatchObject({ can_delete: 'yes', findings: [{ short: 'This key can delete the backups. Make a key that cannot:' }] });

    // The form tests a key that cannot delete before it is saved: the card keeps its line until "Save"...
    const better = { ...nas, endpoint: proxy.endpoint };
    expect((await client().call('testTarget', { body: better })).can_delete).toBe('no');
    expect(tested()?.can_delete).toBe('yes');
    // ...which takes the form's test as the destination's own, without testing again.
    const deletes = proxy.seen.filter((x) => x.method === 'DELETE').length;
    await client().call('updateTarget', { params: { id: 'nas' }, body: better });
    expect(tested()).toMatchObject({ can_delete: 'no', findings: [{ level: 'good' }] });
    expect(tested()!.findings.some((f) => f.short)).toBe(false);
    expect(proxy.seen.filter((x) => x.method === 'DELETE').length).toBe(deletes);
    await restart();
    expect(tested()?.can_delete).toBe('no');

    // Back to the key that can delete, tested from the card: the line is back, and a new key drops it.
    await client().call('updateTarget', { params: { id: 'nas' }, body: nas });
    expect(tested()).toBeUndefined(); // another address: the proxy's finding does not describe it
    await client().call('testTargetById', { params: { id: 'nas' } });
    expect(tested()?.can_delete).toBe('yes');
    await client().call('updateTarget', { params: { id: 'nas' }, body: { ...nas, credentials: { accessKeyId: 'ANOTHER', secretAccessKey: 'another-secret' } } });
    expect(tested()).toBeUndefined();
    await restart();
    expect(tested()).toBeUndefined();

    // A hand edit while the engine is stopped (the address) drops it too.
    await client().call('updateTarget', { params: { id: 'nas' }, body: nas });
    await client().call('testTargetById', { params: { id: 'nas' } });
    expect(tested()?.can_delete).toBe('yes');
    await engine.stop();
    td.forget(engine);
    writeConfig(data, { targets: [{ ...nas, endpoint: proxy.endpoint }] });
    engine = td.add(await startEngine(data));
    expect(tested()).toBeUndefined();
    writeConfig(data, { targets: [nas] });
    await restart();
    expect(tested()).toBeUndefined(); // dropped for good, not hidden: the same settings again find nothing kept
  }, 60_000);
});
