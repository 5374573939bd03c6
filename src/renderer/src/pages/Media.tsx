import { useEffect, useState } from 'react';
import type { FileRecord, MediaInfo, MediaQuery } from '../../../shared/api';
import { STREAM_ROUTES } from '../../../shared/api';
import { downloadUrl } from '../components/DragOut';
import { Dialog, ErrorNote, Loading, NotAvailable, PageHeader } from '../components/ui';
import { isNotAvailable, toShownError, type ShownError } from '../lib/errors';
import { fileName, formatBytes, formatCount, formatDuration, formatTime } from '../lib/format';
import { urlWithToken } from '../lib/transport';
import { api, useApp } from '../store';

const PAGE = 60;

const TRANSCODE_WORDS: Record<NonNullable<MediaInfo['transcode_state']>, string> = {
  none: '',
  queued: 'Waiting to convert',
  running: 'Converting',
  done: 'Plays everywhere',
  skipped: 'Not converted',
  failed: 'Conversion failed',
};

function thumbUrl(key: string, size = 320): string {
  const conn = useApp.getState().conn;
  return urlWithToken({ baseUrl: conn?.baseUrl ?? '', token: conn?.token ?? null }, STREAM_ROUTES.thumbnail, { key, size });
}

export function MediaPage() {
  const roots = useApp((s) => s.roots);
  const [kind, setKind] = useState<'' | 'image' | 'video'>('');
  const [text, setText] = useState('');
  const [q, setQ] = useState('');
  const [root, setRoot] = useState('');
  const [sort, setSort] = useState<NonNullable<MediaQuery['sort']>>('captured');
  const [items, setItems] = useState<FileRecord[]>([]);
  const [total, setTotal] = useState<number | null>(null);
  const [state, setState] = useState<'loading' | 'ok' | 'unavailable'>('loading');
  const [error, setError] = useState<ShownError | null>(null);
  const [open, setOpen] = useState<FileRecord | null>(null);

  useEffect(() => {
    const t = setTimeout(() => setQ(text.trim()), 250);
    return () => clearTimeout(t);
  }, [text]);

  const query: MediaQuery = { kind: kind || undefined, q: q || undefined, root: root || undefined, sort };
  const key = JSON.stringify(query);
  useEffect(() => {
    const ctrl = new AbortController();
    setState('loading');
    setItems([]);
    setTotal(null);
    api()
      .call('mediaList', { query: { ...(JSON.parse(key) as MediaQuery), offset: 0, limit: PAGE } }, ctrl.signal)
      .then((p) => {
        setItems(p.items);
        setTotal(p.total);
        setState('ok');
        setError(null);
      })
      .catch((e: unknown) => {
        if (ctrl.signal.aborted) return;
        if (isNotAvailable(e)) setState('unavailable');
        else {
          setError(toShownError(e));
          setState('ok');
        }
      });
    return () => ctrl.abort();
  }, [key]);

  const loadMore = async () => {
    try {
      const p = await api().call('mediaList', { query: { ...query, offset: items.length, limit: PAGE } });
      setItems((x) => [...x, ...p.items]);
      setTotal(p.total);
    } catch (e) {
      setError(toShownError(e));
    }
  };

  if (state === 'unavailable')
    return (
      <>
        <PageHeader title="Media" />
        <NotAvailable feature="The media library" />
      </>
    );

  return (
    <>
      <PageHeader title="Media" />
      <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label>
          <span>Show</span>
          <select value={kind} onChange={(e) => setKind(e.target.value as '' | 'image' | 'video')}>
            <option value="">Photos and videos</option>
            <option value="image">Photos</option>
            <option value="video">Videos</option>
          </select>
        </label>
        <label>
          <span>Folder</span>
          <select value={root} onChange={(e) => setRoot(e.target.value)}>
            <option value="">All</option>
            {roots?.map((r) => (
              <option key={r.id} value={r.id}>
                {r.label}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span>Order</span>
          <select value={sort} onChange={(e) => setSort(e.target.value as NonNullable<MediaQuery['sort']>)}>
            <option value="captured">Date taken</option>
            <option value="mtime">Date changed</option>
            <option value="name">Name</option>
          </select>
        </label>
        <label className="grow">
          <span>Find</span>
          <input type="search" value={text} onChange={(e) => setText(e.target.value)} placeholder="Part of a name" />
        </label>
      </form>
      {error ? <ErrorNote message={error.message} detail={error.detail} /> : null}
      {state === 'loading' ? <Loading what="photos and videos" /> : null}
      {total !== null ? (
        <p className="list-count" role="status">
          {formatCount(total)} {total === 1 ? 'item' : 'items'}
        </p>
      ) : null}
      <ul className="media-grid">
        {items.map((f) => (
          <li key={f.key}>
            <button type="button" className="media-tile" onClick={() => setOpen(f)} aria-label={`${fileName(f.rel_path)}, ${f.kind === 'video' ? 'video' : 'photo'}`}>
              <Thumb file={f} />
              <span className="media-name">{fileName(f.rel_path)}</span>
              <span className="media-meta muted">
                {f.kind === 'video' && f.media?.duration_s ? formatDuration(f.media.duration_s) : formatBytes(f.size)}
                {f.media?.transcode_state && TRANSCODE_WORDS[f.media.transcode_state] ? ` · ${TRANSCODE_WORDS[f.media.transcode_state]}` : ''}
              </span>
            </button>
          </li>
        ))}
      </ul>
      {total !== null && items.length < total ? (
        <button type="button" className="btn" onClick={() => void loadMore()}>
          Show more
        </button>
      ) : null}
      {open ? <MediaDetail file={open} onClose={() => setOpen(null)} /> : null}
    </>
  );
}

function Thumb({ file }: { file: FileRecord }) {
  const [failed, setFailed] = useState(false);
  if (failed) return <span className="thumb thumb-none" aria-hidden="true">{file.kind === 'video' ? '▶' : '▣'}</span>;
  return <img className="thumb" src={thumbUrl(file.key)} alt="" loading="lazy" decoding="async" onError={() => setFailed(true)} />;
}

function MediaDetail({ file, onClose }: { file: FileRecord; onClose: () => void }) {
  const m = file.media;
  const playable = file.kind === 'video' ? (m?.mp4_key ?? (/\.(mp4|webm)$/i.test(file.rel_path) ? file.key : undefined)) : undefined;
  return (
    <Dialog title={fileName(file.rel_path)} onClose={onClose} wide>
      <div className="dialog-body media-detail">
        {file.kind === 'image' ? <img src={thumbUrl(file.key, 1280)} alt={fileName(file.rel_path)} className="media-preview" /> : null}
        {file.kind === 'video' && playable ? (
          <video src={downloadUrl(playable)} poster={m?.poster_key ? downloadUrl(m.poster_key) : undefined} controls preload="metadata" className="media-preview">
            <track kind="captions" />
          </video>
        ) : null}
        {file.kind === 'video' && !playable ? <p className="muted">This video cannot play in a browser until it has been converted.</p> : null}
        <dl className="facts">
          <dt>Where</dt>
          <dd className="mono break">{file.key}</dd>
          <dt>Size</dt>
          <dd>{formatBytes(file.size)}</dd>
          {m?.captured_at ? (
            <>
              <dt>Taken</dt>
              <dd>{formatTime(m.captured_at)}</dd>
            </>
          ) : null}
          {m?.width ? (
            <>
              <dt>Picture</dt>
              <dd>
                {m.width} × {m.height}
              </dd>
            </>
          ) : null}
          {m?.duration_s ? (
            <>
              <dt>Length</dt>
              <dd>{formatDuration(m.duration_s)}</dd>
            </>
          ) : null}
          {m?.video_codec ? (
            <>
              <dt>Format</dt>
              <dd>
                {m.video_codec}
                {m.audio_codec ? ` / ${m.audio_codec}` : ''}
              </dd>
            </>
          ) : null}
          {m?.transcode_state && m.transcode_state !== 'none' ? (
            <>
              <dt>Conversion</dt>
              <dd>
                {TRANSCODE_WORDS[m.transcode_state]}
                {m.transcode_reason ? `: ${m.transcode_reason}` : ''}
              </dd>
            </>
          ) : null}
        </dl>
        <a className="btn" href={downloadUrl(file.key)} download={fileName(file.rel_path)}>
          Download the original
        </a>
      </div>
    </Dialog>
  );
}
