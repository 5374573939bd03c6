// Drag a file out of the window: in Electron the shell hands the OS a real file (restored where it is
// dropped); in Chromium the DownloadURL drag type downloads it where it is dropped.
import type { DragEvent, PointerEvent } from 'react';
import { STREAM_ROUTES } from '../../../shared/api';
import { contentTypeOf } from '../../../shared/keys';
import { fileName } from '../lib/format';
import { absoluteUrl, isElectron, urlWithToken } from '../lib/transport';
import { useApp } from '../store';

export function downloadUrl(key: string): string {
  const conn = useApp.getState().conn;
  return urlWithToken({ baseUrl: conn?.baseUrl ?? '', token: conn?.token ?? null }, STREAM_ROUTES.download, { key });
}

export function dragOutProps(key: string) {
  return {
    draggable: true,
    onPointerDown: (_e: PointerEvent) => {
      if (isElectron()) void window.triplicate!.prepareDrag(key);
    },
    onDragStart: (e: DragEvent) => {
      if (isElectron()) {
        e.preventDefault();
        window.triplicate!.startDrag(key);
        return;
      }
      const name = fileName(key).replace(/:/g, '_');
      e.dataTransfer.effectAllowed = 'copy';
      e.dataTransfer.setData('DownloadURL', `${contentTypeOf(key)}:${name}:${absoluteUrl(downloadUrl(key))}`);
      e.dataTransfer.setData('text/plain', key);
    },
  };
}
