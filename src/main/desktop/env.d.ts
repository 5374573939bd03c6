// What Vite adds to import.meta in the main-process bundle (only what the shell uses).
interface ImportMeta {
  glob<T>(pattern: string): Record<string, () => Promise<T>>;
}
