// JSON columns: values go in with JSON.stringify and come out through parseJson, which
// names the column if a row was written by something other than this code.
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function parseJson<T extends Json = Json>(text: string, where: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`The stored JSON in ${where} is damaged (${(err as Error).message}); repair the row or restore a backup.`, { cause: err });
  }
}
