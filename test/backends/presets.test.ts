// Provider presets and the effective client settings they give a target.
import { describe, expect, it } from 'vitest';
import { createBackend } from '../../src/main/engine/backends';
import { DEFAULT_MULTIPART_THRESHOLD, DEFAULT_PART_SIZE, listPresets, partSizeFor, PRESETS, resolveS3Settings } from '../../src/main/engine/backends/presets';
import { S3Backend } from '../../src/main/engine/backends/s3';
import { PROVIDER_PRESETS, s3TargetSchema, type S3TargetConfig } from '../../src/shared/config';

const MiB = 1024 * 1024;

function s3(input: Record<string, unknown>): S3TargetConfig {
  return s3TargetSchema.parse({
    id: 't',
    label: 'T',
    kind: 's3',
    bucket: 'media',
    endpoint: 'https://s3.example.com',
    credentials: { accessKeyId: 'k', secretAccessKey: 's' },
    ...input,
  });
}

describe('presets', () => {
  it('cover every provider of the config schema, plus folder, with a label and endpoint hint', () => {
    const ids = listPresets().map((p) => p.id);
    expect(new Set(ids)).toEqual(new Set([...PROVIDER_PRESETS, 'folder']));
    for (const p of listPresets()) {
      expect(p.label.length).toBeGreaterThan(2);
      expect(p.endpointHint.length).toBeGreaterThan(2);
    }
  });

  it('R2: region auto, path-style, equal parts, no versioning, priced', () => {
    const r2 = PRESETS.r2;
    expect(r2).toMatchObject({ region: 'auto', pathStyle: true, versioning: false, equalPartSizes: true, storageUsdPerGbMonth: 0.015 });
    const eff = resolveS3Settings(s3({ preset: 'r2', region: 'eu-west-1', endpoint: 'https://acc.r2.cloudflarestorage.com' }));
    expect(eff.region).toBe('auto'); // R2 accepts nothing else
    expect(eff.forcePathStyle).toBe(true);
  });

  it('MinIO/RustFS are path-style; AWS is virtual-hosted; B2 and Wasabi too', () => {
    expect(resolveS3Settings(s3({ preset: 'minio' })).forcePathStyle).toBe(true);
    expect(resolveS3Settings(s3({ preset: 'rustfs' })).forcePathStyle).toBe(true);
    expect(resolveS3Settings(s3({ preset: 'aws', endpoint: undefined })).forcePathStyle).toBe(false);
    expect(resolveS3Settings(s3({ preset: 'b2' })).forcePathStyle).toBe(false);
    expect(resolveS3Settings(s3({ preset: 'wasabi' })).forcePathStyle).toBe(false);
    expect(resolveS3Settings(s3({ preset: 'other' })).forcePathStyle).toBe(true);
  });

  it('explicit settings win over the preset; the schema default region "auto" becomes the preset region', () => {
    expect(resolveS3Settings(s3({ preset: 'aws', pathStyle: true })).forcePathStyle).toBe(true);
    expect(resolveS3Settings(s3({ preset: 'minio', pathStyle: false })).forcePathStyle).toBe(false);
    expect(resolveS3Settings(s3({ preset: 'minio' })).region).toBe('us-east-1'); // schema default was "auto"
    expect(resolveS3Settings(s3({ preset: 'aws', region: 'eu-central-1' })).region).toBe('eu-central-1');
    expect(resolveS3Settings(s3({ preset: 'b2' })).region).toBe('us-west-004');
    const eff = resolveS3Settings(s3({ preset: 'minio', multipartThreshold: 64 * MiB, partSize: 32 * MiB }));
    expect(eff).toMatchObject({ multipartThreshold: 64 * MiB, partSize: 32 * MiB });
    expect(resolveS3Settings(s3({}))).toMatchObject({ multipartThreshold: DEFAULT_MULTIPART_THRESHOLD, partSize: DEFAULT_PART_SIZE });
  });

  it('Object Lock: which providers lock per object, R2 by bucket rules; immutableDays is checked with a sentence naming it', () => {
    const modes = Object.fromEntries(listPresets().map((p) => [p.id, p.objectLock]));
    expect(modes).toEqual({ minio: 'retention', rustfs: 'retention', aws: 'retention', b2: 'retention', wasabi: 'retention', r2: 'bucket-rule', other: 'unknown', folder: 'none' });
    for (const p of listPresets()) expect(p.objectLockNote?.length).toBeGreaterThan(10);
    expect(resolveS3Settings(s3({ preset: 'aws', immutableDays: 30 }))).toMatchObject({ lockDays: 30, lockHeaders: true });
    expect(resolveS3Settings(s3({ preset: 'r2', immutableDays: 30 }))).toMatchObject({ lockDays: 30, lockHeaders: false });
    expect(resolveS3Settings(s3({ preset: 'minio' }))).toMatchObject({ lockDays: 0, lockHeaders: false });
    expect(resolveS3Settings(s3({ preset: 'minio', immutableDays: 0 }))).toMatchObject({ lockDays: 0, lockHeaders: false });
    for (const [bad, why] of [
      [-1, 'immutableDays cannot be negative (0 turns it off)'],
      [1.5, 'immutableDays must be a whole number of days (0 turns it off)'],
      ['30', 'immutableDays must be a whole number of days (0 turns it off)'],
      [3651, 'immutableDays can be at most 3650 (10 years): a locked copy is paid for until its date'],
    ] as const) {
      const r = s3TargetSchema.safeParse({ id: 't', label: 'T', kind: 's3', bucket: 'media', credentials: { accessKeyId: 'k', secretAccessKey: 's' }, immutableDays: bad });
      expect(r.success).toBe(false);
      expect(r.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([['immutableDays', why]]);
    }
  });

  it('part sizes stay constant per object and grow so that any file fits in 10,000 parts', () => {
    expect(partSizeFor(100 * MiB, 8 * MiB)).toBe(8 * MiB);
    expect(partSizeFor(10_000 * 8 * MiB, 8 * MiB)).toBe(8 * MiB);
    const huge = 200 * 1024 * MiB; // 200 GiB
    const ps = partSizeFor(huge, 8 * MiB);
    expect(ps % MiB).toBe(0);
    expect(Math.ceil(huge / ps)).toBeLessThanOrEqual(10_000);
  });

  it('the S3 client gets the quirks: checksums only when required, no SDK retries, path style', async () => {
    const b = createBackend(s3({ preset: 'minio', endpoint: 'http://127.0.0.1:9' }), { retry: false }) as S3Backend;
    try {
      const cfg = b.client.config;
      expect(await cfg.requestChecksumCalculation()).toBe('WHEN_REQUIRED');
      expect(await cfg.responseChecksumValidation()).toBe('WHEN_REQUIRED');
      expect(await cfg.maxAttempts()).toBe(1);
      expect(cfg.forcePathStyle).toBe(true);
      expect(await cfg.region()).toBe('us-east-1');
      expect(b.description).toBe('T (http://127.0.0.1:9, bucket media)');
    } finally {
      b.close();
    }
  });
});
