// Streaming readers for demonstration datasets: HH transcripts, JSON Lines and CSV, each
// optionally gzip-compressed. Files are read chunk by chunk and split into lines here,
// with a cap on the length of one line, so memory stays bounded whatever the file size
// (readline has no such cap: one 1 GB line would be buffered whole).
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import Type from 'typebox';
import Compile from 'typebox/compile';
import type { DatasetFormat } from '../../db/datasets.ts';
import { closeKey } from '../schema/parse.ts';

export type { DatasetFormat } from '../../db/datasets.ts';

/** One example as read from a file; `line` is where it starts (1-based). */
export interface DatasetRecord {
  prompt: string;
  response?: string;
  chosen?: string;
  rejected?: string;
  line: number;
}

// ---------------------------------------------------------------------------------------
// The rows: one schema for a JSON Lines row (HH transcripts are rows with chosen and
// rejected), checked compiled, since it runs on every line. Fields the importer does not
// read (an id, a source, scores, a system prompt) are allowed and ignored: real datasets
// carry them. But a field that looks like a misspelling of one it reads, which the line
// lacks ("promt" without "prompt"), is refused with the field it probably means, instead
// of the line failing with a missing field or, worse, a pair losing its rejected response.
// CSV fields are text by construction; its header is checked the same way.

const MESSAGE = Type.Object({ role: Type.String(), content: Type.String() });
const ROW = Type.Object({
  prompt: Type.Optional(Type.String()),
  response: Type.Optional(Type.String()),
  completion: Type.Optional(Type.String()),
  chosen: Type.Optional(Type.String()),
  rejected: Type.Optional(Type.String()),
  messages: Type.Optional(Type.Array(MESSAGE, { minItems: 1 })),
});
const rowCheck = Compile(ROW);
const ROW_FIELDS = Object.keys(ROW.properties);
const CSV_COLUMNS = ['prompt', 'response', 'completion', 'chosen', 'rejected'];

/** A JSON Lines row as the importer reads it. */
type Row = Type.Static<typeof ROW>;

/** One message of a chat line (other keys of the message are not passed on). */
export type ChatMessage = Type.Static<typeof MESSAGE>;

/** Turns a chat into (prompt, response) with a model's chat template. */
export type RenderMessages = (messages: ChatMessage[]) => { prompt: string; response: string };

export interface ReadOptions {
  /** Skip detection: 'hh' transcripts, 'jsonl' records, or 'csv' with a header row. */
  format?: DatasetFormat;
  /** Needed for `{messages: [...]}` lines; chat templates belong to the model. */
  renderMessages?: RenderMessages;
  /** Longest accepted line (CSV: record) in bytes; default 8 MB. */
  maxLineBytes?: number;
}

export const DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024;

/** A problem with the contents of a dataset file, located by file and line. */
export class DatasetFormatError extends Error {
  override readonly name = 'DatasetFormatError';
  readonly file: string;
  readonly line: number;
  constructor(file: string, line: number, message: string) {
    super(message);
    this.file = file;
    this.line = line;
  }
}

/** Reads `file` record by record; iterate it with `for await`. */
export function readDataset(file: string, options: ReadOptions = {}): DatasetReader {
  return new DatasetReader(file, options);
}

export class DatasetReader implements AsyncIterable<DatasetRecord> {
  /** Bytes of the file consumed so far (compressed bytes for a gzip file). */
  bytesRead = 0;
  /** Physical lines read so far. */
  linesRead = 0;
  /** The format in use: the requested one, or what detection found at the first line. */
  format: DatasetFormat | undefined;
  readonly file: string;
  private readonly options: ReadOptions;

  constructor(file: string, options: ReadOptions = {}) {
    this.file = file;
    this.options = options;
    this.format = options.format;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<DatasetRecord> {
    this.bytesRead = 0;
    this.linesRead = 0;
    const maxLineBytes = this.options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    const fail = (line: number, sentence: string): DatasetFormatError =>
      new DatasetFormatError(this.file, line, `${basename(this.file)}, line ${line}: ${sentence}.`);

    // 'json' = JSON Lines whose flavour (hh or jsonl) the first object decides.
    let kind: 'csv' | 'json' | undefined = this.options.format === undefined ? kindFromName(this.file) : this.options.format === 'csv' ? 'csv' : 'json';
    let csv: CsvParser | undefined;
    let header: CsvColumns | undefined;
    let headerLine = 0;
    let records = 0;

    for await (const line of readLines(this, maxLineBytes)) {
      const n = line.number;
      if (kind === undefined) {
        if (line.text.trim() === '') continue;
        kind = kindFromContent(line.text);
        if (kind === undefined) throw fail(n, 'the format cannot be told from the file name or the first line; name the file .jsonl or .csv, or choose the format explicitly');
      }
      if (kind === 'json') {
        const text = line.text.trim();
        if (text === '') continue;
        if (records === 0 && this.format === undefined && text.startsWith('[')) {
          throw fail(n, `the file is one JSON array, not JSON Lines (one object per line); convert it, e.g. with jq -c '.[]' ${basename(this.file)} > data.jsonl, and import that`);
        }
        const row = checkedRow(parseObject(text, n, fail), n, fail);
        this.format ??= isHhRow(row) ? 'hh' : 'jsonl';
        records++;
        yield this.format === 'hh' ? hhRecord(row, n, fail) : jsonlRecord(row, n, fail, this.options.renderMessages);
        continue;
      }
      this.format = 'csv';
      csv ??= new CsvParser(maxLineBytes, fail);
      const fields = csv.push(line.text, n, line.crlf);
      if (fields === undefined || fields.length === 0) continue; // quoted field goes on, or a blank line
      if (header === undefined) {
        header = csvHeader(fields, csv.recordStart, fail);
        headerLine = csv.recordStart;
        continue;
      }
      records++;
      yield csvRecord(header, fields, csv.recordStart, fail);
    }

    if (csv?.inQuotes) {
      throw fail(csv.recordStart, 'a quoted field opened on this line is never closed (unterminated quote); add the closing quote, and double any quote inside the field ("")');
    }
    if (records === 0) {
      const name = basename(this.file);
      const why = header !== undefined ? `it has only the header row (line ${headerLine})`
        : this.linesRead === 0 ? 'it is empty'
          : `its ${this.linesRead} line${this.linesRead === 1 ? ' is' : 's are'} blank`;
      throw new DatasetFormatError(this.file, this.linesRead, `${name} has no examples: ${why}; choose a file with at least one example.`);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Lines: bytes -> (gunzip) -> lines of at most maxLineBytes -> strict UTF-8 text.

interface Line {
  text: string;
  number: number;
  /** The line ended in \r\n (kept inside quoted CSV fields). */
  crlf: boolean;
}

async function* readLines(reader: DatasetReader, maxLineBytes: number): AsyncGenerator<Line> {
  const file = reader.file;
  const name = basename(file);
  const head = await readHead(file);
  // Detect gzip by its magic bytes, so a compressed file is read right whatever its name.
  const gzip = head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
  if (!gzip && head.length >= 2 && ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff))) {
    throw new DatasetFormatError(file, 1, `${name}, line 1: the file is UTF-16 text; save it as UTF-8 and import it again.`);
  }

  const raw = createReadStream(file, { highWaterMark: 256 * 1024 });
  let source: AsyncIterable<Buffer>;
  if (gzip) {
    const gunzip = createGunzip();
    raw.on('data', (chunk: Buffer | string) => { reader.bytesRead += chunk.length; });
    // Errors of either stream reach the loop below through gunzip's iterator.
    pipeline(raw, gunzip, () => {});
    source = gunzip;
  } else {
    source = raw;
  }

  // fatal: a wrong byte is an error, never a silent U+FFFD; ignoreBOM: strip it ourselves,
  // only at the start of the file, so a U+FEFF inside the text survives.
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const decode = (bytes: Buffer, number: number): Line => {
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      throw new DatasetFormatError(file, number, `${name}, line ${number}: the text is not valid UTF-8 (at byte ${firstInvalidUtf8(bytes) + 1} of the line); save the file as UTF-8 and import it again.`);
    }
    if (number === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    const crlf = text.endsWith('\r');
    return { text: crlf ? text.slice(0, -1) : text, number, crlf };
  };

  let parts: Buffer[] = [];
  let partBytes = 0;
  let number = 0;
  try {
    for await (const chunk of source) {
      if (!gzip) reader.bytesRead += chunk.length;
      let start = 0;
      while (start < chunk.length) {
        const nl = chunk.indexOf(0x0a, start);
        const end = nl === -1 ? chunk.length : nl;
        if (partBytes + end - start > maxLineBytes) {
          throw new DatasetFormatError(file, number + 1, `${name}, line ${number + 1}: the line is longer than ${formatBytes(maxLineBytes)}, the limit for one example; check that the file really has one example per line, or raise the line limit.`);
        }
        if (nl === -1) {
          parts.push(chunk.subarray(start));
          partBytes += chunk.length - start;
          break;
        }
        number++;
        const bytes = partBytes === 0 ? chunk.subarray(start, nl) : Buffer.concat([...parts, chunk.subarray(start, nl)]);
        parts = [];
        partBytes = 0;
        reader.linesRead = number;
        yield decode(bytes, number);
        start = nl + 1;
      }
    }
  } catch (err) {
    if (err instanceof DatasetFormatError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'Z_BUF_ERROR' || code === 'Z_DATA_ERROR') {
      throw new DatasetFormatError(file, number + 1, `${name}, line ${number + 1}: the gzip data is truncated or damaged here (${(err as Error).message}); copy or download the file again.`);
    }
    throw new Error(`Could not read ${name} (${(err as Error).message}); check that the file is readable.`, { cause: err });
  }
  if (partBytes > 0) {
    number++;
    reader.linesRead = number;
    yield decode(Buffer.concat(parts), number);
  }
}

/** First bytes of the file; also turns open failures into sentences. */
async function readHead(file: string): Promise<Buffer> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'there is no such file' : code === 'EACCES' ? 'permission was denied' : (err as Error).message;
    throw new Error(`Could not open ${file}: ${why}; check the path.`, { cause: err });
  }
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await handle.read(buf, 0, 4, 0);
    return buf.subarray(0, bytesRead);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'EISDIR' ? 'it is a folder, not a file' : (err as Error).message;
    throw new Error(`Could not read ${file}: ${why}; choose a dataset file.`, { cause: err });
  } finally {
    await handle.close();
  }
}

/** Offset of the first byte that does not start a valid UTF-8 character (error path only). */
function firstInvalidUtf8(bytes: Buffer): number {
  const strict = new TextDecoder('utf-8', { fatal: true });
  for (let i = 0; i < bytes.length;) {
    const lead = bytes[i];
    const size = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
    try {
      strict.decode(bytes.subarray(i, i + size));
    } catch {
      return i;
    }
    i += size;
  }
  return bytes.length;
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${+(n / (1024 * 1024)).toFixed(1)} MB` : n >= 1024 ? `${+(n / 1024).toFixed(1)} KB` : `${n} bytes`;
}

// ---------------------------------------------------------------------------------------
// Format detection.

function kindFromName(file: string): 'csv' | 'json' | undefined {
  const name = file.toLowerCase().replace(/\.gz$/, '');
  if (name.endsWith('.csv')) return 'csv';
  if (/\.(jsonl|ndjson|jsonlines|json)$/.test(name)) return 'json';
  return undefined;
}

function kindFromContent(firstLine: string): 'csv' | 'json' | undefined {
  const t = firstLine.trimStart();
  if (t.startsWith('{') || t.startsWith('[')) return 'json';
  if (t.includes(',')) return 'csv';
  return undefined;
}

// ---------------------------------------------------------------------------------------
// JSON Lines and HH transcripts.

type Fail = (line: number, sentence: string) => DatasetFormatError;
type JsonObject = Record<string, unknown>;

function parseObject(text: string, n: number, fail: Fail): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw fail(n, `the line is not valid JSON (${(err as Error).message}); if this is the last line the file may be cut off, otherwise fix or remove the line`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw fail(n, `the line is ${describe(value)}, not a JSON object; each line must be one object such as {"prompt": "...", "response": "..."}`);
  }
  return value as JsonObject;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string': return 'a string';
    case 'number': return 'a number';
    case 'boolean': return 'a boolean';
    case 'object': return 'an object';
    default: return typeof value;
  }
}

/** The line checked against the row schema; a wrong type is refused naming the field. */
function checkedRow(obj: JsonObject, n: number, fail: Fail): Row {
  if (!rowCheck.Check(obj)) {
    const error = rowCheck.Errors(obj)[0];
    const [field, index] = error.instancePath.slice(1).split('/');
    const v = obj[field];
    if (field !== 'messages') throw fail(n, `the field "${field}" is ${describe(v)}, not a string; give it as text`);
    if (index === undefined) throw fail(n, `the field "messages" is ${Array.isArray(v) ? 'an empty list' : describe(v)}, not a list of {"role", "content"} objects; fix the line`);
    const m = (v as unknown[])[Number(index)];
    if (m === null || typeof m !== 'object' || Array.isArray(m)) throw fail(n, `message ${Number(index) + 1} is ${describe(m)}, not a {"role", "content"} object; fix the line`);
    throw fail(n, `message ${Number(index) + 1} needs a string "role" and a string "content"; fix the line`);
  }
  for (const [key, value] of Object.entries(obj)) {
    const meant = misspelt(key, value, ROW_FIELDS, (f) => f in obj);
    if (meant !== null) throw fail(n, `the field "${key}" looks like a misspelt "${meant}", which the line lacks; rename it (fields the importer does not read are ignored, but not one so close to a field it does)`);
  }
  return obj as Row;
}

const guesses = new Map<string, string | null>();

/** The known field an unknown `key` probably misspells (at most 2 letters off, the same kind
 *  of value, and absent), or null. Guesses are kept by name: a file repeats its keys. */
function misspelt(key: string, value: unknown, known: readonly string[], present: (field: string) => boolean): string | null {
  if (known.includes(key)) return null;
  if (!guesses.has(key)) guesses.set(key, closeKey(key, known, 2));
  const near = guesses.get(key) ?? null;
  if (near === null || present(near)) return null;
  return (near === 'messages' ? Array.isArray(value) : typeof value === 'string') ? near : null;
}

function required(row: Row, key: 'prompt' | 'chosen' | 'rejected', n: number, fail: Fail, shape: string): string {
  const v = row[key];
  if (v === undefined) throw fail(n, `the field "${key}" is missing; each line needs ${shape}`);
  return v;
}

function isHhRow(row: Row): boolean {
  return row.chosen !== undefined && row.rejected !== undefined && row.prompt === undefined && row.messages === undefined;
}

const ASSISTANT_TURN = '\n\nAssistant:';

function hhRecord(row: Row, n: number, fail: Fail): DatasetRecord {
  const shape = 'both "chosen" and "rejected" transcripts ("\\n\\nHuman: ...\\n\\nAssistant: ...")';
  const chosen = required(row, 'chosen', n, fail, shape);
  const rejected = required(row, 'rejected', n, fail, shape);
  const cut = hhPromptEnd(chosen, rejected, n, fail);
  return { prompt: chosen.slice(0, cut), response: chosen.slice(cut), chosen: chosen.slice(cut), rejected: rejected.slice(cut), line: n };
}

/** Length of the prompt that `chosen` and `rejected` share: everything up to and including
 *  the last "\n\nAssistant:". When the two split there differently, one final turn itself
 *  contains "\n\nAssistant:" (5 lines of the real harmless-base test split do); then the
 *  prompt is the shorter split, provided the other transcript starts with it. */
function hhPromptEnd(chosen: string, rejected: string, n: number, fail: Fail): number {
  const ic = chosen.lastIndexOf(ASSISTANT_TURN);
  const ir = rejected.lastIndexOf(ASSISTANT_TURN);
  for (const [field, i] of [['chosen', ic], ['rejected', ir]] as const) {
    if (i < 0) throw fail(n, `"${field}" has no "\\n\\nAssistant:" turn, so it is not an HH transcript; fix the line or import the file as plain JSON Lines`);
  }
  const ec = ic + ASSISTANT_TURN.length;
  const er = ir + ASSISTANT_TURN.length;
  const [short, long, end] = ec <= er ? [chosen, rejected, ec] : [rejected, chosen, er];
  if (long.startsWith(short.slice(0, end))) return end;
  throw fail(n, '"chosen" and "rejected" differ before their final Assistant turn, so they do not answer the same prompt; fix or remove this line');
}

function jsonlRecord(row: Row, n: number, fail: Fail, render: RenderMessages | undefined): DatasetRecord {
  if (row.messages !== undefined) return messagesRecord(row.messages, n, fail, render);
  const shape = '"prompt" with "response", "completion", or "chosen" and "rejected" (or a "messages" list)';
  const prompt = required(row, 'prompt', n, fail, shape);
  const { response, completion, chosen, rejected } = row;
  if (response !== undefined && completion !== undefined) {
    throw fail(n, 'the line has both "response" and "completion"; keep only one of them');
  }
  if ((chosen === undefined) !== (rejected === undefined)) {
    throw fail(n, `the field "${chosen === undefined ? 'chosen' : 'rejected'}" is missing; a preference pair needs both "chosen" and "rejected"`);
  }
  // A pair's demonstration is its chosen response (as for HH transcripts).
  const demo = response ?? completion ?? chosen;
  if (demo === undefined) throw fail(n, `the line has a "prompt" but no response; each line needs ${shape}`);
  return pairRecord(prompt, demo, chosen, rejected, n);
}

function pairRecord(prompt: string, response: string, chosen: string | undefined, rejected: string | undefined, line: number): DatasetRecord {
  return chosen === undefined || rejected === undefined ? { prompt, response, line } : { prompt, response, chosen, rejected, line };
}

function messagesRecord(chat: ChatMessage[], n: number, fail: Fail, render: RenderMessages | undefined): DatasetRecord {
  const messages = chat.map(({ role, content }) => ({ role, content }));
  if (render === undefined) {
    throw fail(n, 'the line is a chat ("messages"), which needs the chat template of a model to become a prompt and a response; choose the model the dataset is for, then import it again');
  }
  let out: { prompt: string; response: string };
  try {
    out = render(messages);
  } catch (err) {
    throw fail(n, `the chat could not be rendered with the model's chat template (${(err as Error).message}); check that it ends with an assistant message`);
  }
  return { prompt: out.prompt, response: out.response, line: n };
}

// ---------------------------------------------------------------------------------------
// CSV (RFC 4180): comma-separated, fields optionally in double quotes, "" for a quote,
// line breaks allowed inside quoted fields. Whitespace is part of a field.

class CsvParser {
  inQuotes = false;
  recordStart = 0;
  private fields: string[] = [];
  private field = '';
  private recordChars = 0;
  private readonly maxChars: number;
  private readonly fail: Fail;

  constructor(maxChars: number, fail: Fail) {
    this.maxChars = maxChars;
    this.fail = fail;
  }

  /** Feeds one physical line. Returns the record's fields when it is complete, [] for a
   *  blank line, undefined while a quoted field continues on the next line. */
  push(text: string, n: number, crlf: boolean): string[] | undefined {
    let i = 0;
    if (this.inQuotes) {
      this.field += crlf ? '\r\n' : '\n';
      this.recordChars += text.length + 1;
      if (this.recordChars > this.maxChars) {
        throw this.fail(this.recordStart, `the quoted field that starts on this line runs past ${formatBytes(this.maxChars)} (line ${n}), so its closing quote is probably missing; add it`);
      }
    } else {
      if (text === '') return [];
      this.recordStart = n;
      this.recordChars = text.length;
      this.fields = [];
      this.field = '';
    }
    for (;;) {
      if (this.inQuotes) {
        const q = text.indexOf('"', i);
        if (q === -1) {
          this.field += text.slice(i);
          return undefined;
        }
        this.field += text.slice(i, q);
        if (text.charCodeAt(q + 1) === 0x22) {
          this.field += '"';
          i = q + 2;
          continue;
        }
        this.inQuotes = false;
        i = q + 1;
        this.fields.push(this.field);
        this.field = '';
        if (i === text.length) return this.fields;
        if (text[i] !== ',') {
          throw this.fail(n, `there is text after the closing quote of column ${this.fields.length} (stray quote); quote the whole field and double every quote inside it ("")`);
        }
        i++;
      }
      // At the start of a field.
      if (text.charCodeAt(i) === 0x22) {
        this.inQuotes = true;
        i++;
        continue;
      }
      const comma = text.indexOf(',', i);
      const end = comma === -1 ? text.length : comma;
      const value = text.slice(i, end);
      if (value.includes('"')) {
        throw this.fail(n, `column ${this.fields.length + 1} has a quote inside an unquoted field (stray quote); put the whole field in quotes and double the quote ("")`);
      }
      this.fields.push(value);
      if (comma === -1) return this.fields;
      i = comma + 1;
    }
  }
}

interface CsvColumns {
  count: number;
  prompt: number;
  response: number;
  chosen: number;
  rejected: number;
}

function csvHeader(fields: string[], n: number, fail: Fail): CsvColumns {
  const names = fields.map((f) => f.trim().toLowerCase());
  const seen = new Set<string>();
  for (const name of names) {
    if (name !== '' && seen.has(name)) throw fail(n, `the header names the column "${name}" twice; rename one of them`);
    seen.add(name);
  }
  for (const name of names) {
    const meant = misspelt(name, '', CSV_COLUMNS, (c) => names.includes(c));
    if (meant !== null) throw fail(n, `the header names the column "${name}", which looks like a misspelt "${meant}"; rename it (columns the importer does not read are ignored, but not one so close to a column it does)`);
  }
  const col = (name: string): number => names.indexOf(name);
  const response = col('response');
  const completion = col('completion');
  const c: CsvColumns = { count: names.length, prompt: col('prompt'), response: response >= 0 ? response : completion, chosen: col('chosen'), rejected: col('rejected') };
  const expected = 'a "prompt" column with "response" (or "completion"), or "chosen" and "rejected"';
  const found = `it has ${names.map((x) => `"${x}"`).join(', ')}`;
  if (c.prompt < 0) throw fail(n, `the header row has no "prompt" column (${found}); it needs ${expected}`);
  if (response >= 0 && completion >= 0) throw fail(n, 'the header has both "response" and "completion" columns; keep only one of them');
  if ((c.chosen < 0) !== (c.rejected < 0)) throw fail(n, `the header has "${c.chosen < 0 ? 'rejected' : 'chosen'}" without "${c.chosen < 0 ? 'chosen' : 'rejected'}"; a preference pair needs both`);
  if (c.response < 0 && c.chosen < 0) throw fail(n, `the header row has no response column (${found}); it needs ${expected}`);
  return c;
}

function csvRecord(c: CsvColumns, fields: string[], n: number, fail: Fail): DatasetRecord {
  if (fields.length !== c.count) {
    throw fail(n, `the row has ${fields.length} field${fields.length === 1 ? '' : 's'} but the header has ${c.count}; put fields that contain commas in quotes`);
  }
  const chosen = c.chosen >= 0 ? fields[c.chosen] : undefined;
  const rejected = c.rejected >= 0 ? fields[c.rejected] : undefined;
  const response = c.response >= 0 ? fields[c.response] : (chosen as string);
  return pairRecord(fields[c.prompt], response, chosen, rejected, n);
}
