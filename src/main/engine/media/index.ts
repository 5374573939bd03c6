// The media layer: what the queue calls for videos and the HTTP layer calls for thumbnails.
// Self-contained: it knows files and MediaSettings, nothing of the catalog or the targets.
//
// Typical use by the transcode stage of the queue (one file):
//
//   const tools = await resolveMediaTools(cfg.media);          // throws 'ffmpeg-missing': pause the stage
//   const probe = await probeMedia(path, { tools, signal });    // store toMediaInfo(probe) in the catalog
//   const skip = assessVideo(probe);                            // permanent reason, or undefined
//   const res = await convertVideo(path, cfg.media, { tools, probe, signal, onProgress });
//   // res.outputPath (MP4) and res.posterPath are new files for the catalog (derived_from = path)
//
// Every failure is a MediaError: `reason` (a sentence for the operator), `permanent` (skip, do
// not retry), `code`, `detail`. The original file is never modified.
//
// On start (after a crash), call cleanupTempFiles(root, { recursive: true }) or, while scanning,
// ignore and delete names for which isTempFile(name) is true.
//
// Naming: see naming.ts. `clip.mov` -> `clip.mp4` + `clip.poster.jpg`, or `clip.mov.mp4` +
// `clip.mov.poster.jpg` when those names are taken by files Triplicate did not make for clip.mov.

export { MediaError, isMediaError, isPermanentMediaError, type MediaErrorCode } from './errors';

export {
  resolveMediaTools,
  clearMediaToolsCache,
  unpackedAsarPath,
  type MediaTools,
  type ResolvedTool,
  type ToolPaths,
} from './ffmpeg';

export {
  probeMedia,
  assessVideo,
  toMediaInfo,
  DEFAULT_VIDEO_LIMITS,
  type MediaProbe,
  type MediaKind,
  type ProbeOptions,
  type VideoLimits,
} from './probe';

export {
  VIDEO_EXTENSIONS,
  isVideoPath,
  isTempFile,
  planOutputs,
  outputCandidates,
  posterPathFor,
  type OutputPaths,
} from './naming';

export {
  transcodeToMp4,
  convertVideo,
  makePoster,
  cleanupTempFiles,
  buildTranscodeArgs,
  verifyMp4,
  expectedSize,
  type TranscodeSettings,
  type TranscodeOptions,
  type TranscodeResult,
  type ConvertResult,
  type PosterOptions,
} from './transcode';

export { thumbnail, pruneThumbnails, type ThumbnailOptions } from './thumbs';
