// Hugging Face tokenizers for the engine: tokenizer.json through @huggingface/tokenizers,
// special tokens and chat templates from tokenizer_config.json (and the files transformers
// reads beside it), with the behaviour of transformers v5's TokenizersBackend
// (`PreTrainedTokenizerFast`), which is what the parity tests compare against.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface EncodeOptions {
  /** Adds what the post-processor adds (e.g. BOS); default true, as in transformers. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drops added tokens marked special (BOS, EOS, pad, ...); default false. */
  skipSpecialTokens?: boolean;
}

export interface ChatTemplateOptions {
  /** Appends the header that starts an assistant turn; default false. */
  addGenerationPrompt?: boolean;
  /** Name of one of several named templates (default: "default"). */
  template?: string;
}

/** An entry of tokenizer.json's `added_tokens`. */
export interface AddedTokenJson {
  id: number;
  content: string;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
  special?: boolean;
}

/** The parts of tokenizer.json this module reads; the rest goes to @huggingface/tokenizers as is. */
export interface TokenizerJson {
  model: { type?: string; vocab?: unknown; [key: string]: unknown };
  added_tokens?: AddedTokenJson[];
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  post_processor?: unknown;
  decoder?: unknown;
  [key: string]: unknown;
}

/** tokenizer_config.json (any extra keys are ignored). */
export interface TokenizerConfig {
  bos_token?: TokenSpec | null;
  eos_token?: TokenSpec | null;
  unk_token?: TokenSpec | null;
  pad_token?: TokenSpec | null;
  sep_token?: TokenSpec | null;
  cls_token?: TokenSpec | null;
  mask_token?: TokenSpec | null;
  add_bos_token?: boolean;
  add_eos_token?: boolean;
  chat_template?: string | NamedTemplate[] | Record<string, string> | null;
  model_max_length?: number;
  clean_up_tokenization_spaces?: boolean;
  added_tokens_decoder?: Record<string, Omit<AddedTokenJson, 'id'>>;
  additional_special_tokens?: TokenSpec[];
  extra_special_tokens?: TokenSpec[] | Record<string, TokenSpec>;
  [key: string]: unknown;
}

/** A special token as a string or as a serialized AddedToken. */
export type TokenSpec = string | (Omit<AddedTokenJson, 'id'> & { __type?: string });

export interface NamedTemplate {
  name: string;
  template: string;
}

// transformers' SPECIAL_TOKENS_ATTRIBUTES: the named tokens a chat template sees.
const NAMED_SPECIAL = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;
type NamedSpecial = (typeof NAMED_SPECIAL)[number];

// transformers writes int(1e30) when a tokenizer has no length limit.
const NO_LIMIT = 1e18;

interface TemplateEntry {
  text: string;
  source: string;
  compiled?: Template;
}

/** Where each part came from, for error messages. */
interface Sources {
  tokenizerJson: string;
  config: string;
}

export class Tokenizer {
  private readonly hf: HfTokenizer;
  private readonly special: Partial<Record<NamedSpecial, string>>;
  private readonly templates: Map<string, TemplateEntry>;
  private readonly sources: Sources;
  private readonly maxId: number;
  /** model_max_length from tokenizer_config.json, or undefined when it sets no limit. */
  readonly modelMaxLength: number | undefined;

  private constructor(json: TokenizerJson, config: TokenizerConfig, templates: Map<string, TemplateEntry>, sources: Sources) {
    this.sources = sources;
    this.templates = templates;
    this.special = namedSpecialTokens(config, sources.config);
    const prepared = prepareJson(json, config, this.special, sources);
    try {
      this.hf = new HfTokenizer(prepared, {
        clean_up_tokenization_spaces: cleansUp(config, prepared),
        eos_token: this.special.eos_token,
      });
    } catch (err) {
      throw new Error(`Cannot use the tokenizer in ${sources.tokenizerJson}: ${message(err)}.`, { cause: err });
    }
    let maxId = -1;
    for (const id of this.hf.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.maxId = maxId;
    const limit = config.model_max_length;
    this.modelMaxLength = typeof limit === 'number' && Number.isFinite(limit) && limit > 0 && limit < NO_LIMIT ? limit : undefined;
  }

  /**
   * Loads tokenizer.json, tokenizer_config.json, special_tokens_map.json, chat_template.jinja
   * and additional_chat_templates/*.jinja from a Hugging Face model folder (all but the
   * first are optional).
   */
  static async fromFolder(dir: string): Promise<Tokenizer> {
    const tokenizerPath = join(dir, 'tokenizer.json');
    const json = await readJson(tokenizerPath, true);
    if (!isTokenizerJson(json)) {
      throw new Error(`Cannot load the tokenizer: ${tokenizerPath} has no "model" object, so it is not a Hugging Face tokenizer.json.`);
    }
    const configPath = join(dir, 'tokenizer_config.json');
    const configJson = await readJson(configPath, false);
    if (configJson !== undefined && !isObject(configJson)) {
      throw new Error(`Cannot load the tokenizer: ${configPath} must hold a JSON object.`);
    }
    const config: TokenizerConfig = { ...(configJson ?? {}) };
    // transformers reads special_tokens_map.json only when the config has no added_tokens_decoder.
    const mapPath = join(dir, 'special_tokens_map.json');
    if (config.added_tokens_decoder === undefined) {
      const map = await readJson(mapPath, false);
      if (map !== undefined && !isObject(map)) throw new Error(`Cannot load the tokenizer: ${mapPath} must hold a JSON object.`);
      for (const [key, value] of Object.entries(map ?? {})) {
        if (key === 'additional_special_tokens' || key === 'extra_special_tokens') {
          if (Array.isArray(value)) config.extra_special_tokens = [...listOf(config.extra_special_tokens), ...(value as TokenSpec[])];
        } else {
          config[key] = value;
        }
      }
    }
    // Template files saved by transformers v5 replace the config's field, as in transformers.
    const files: [name: string, path: string][] = [['default', join(dir, 'chat_template.jinja')]];
    const extraDir = join(dir, 'additional_chat_templates');
    const extra = (await readdir(extraDir).catch(() => [] as string[])).filter((f) => f.endsWith('.jinja')).sort();
    for (const f of extra) files.push([f.slice(0, -'.jinja'.length), join(extraDir, f)]);
    const fromFiles = new Map<string, TemplateEntry>();
    for (const [name, path] of files) {
      const text = await readText(path);
      if (text !== undefined) fromFiles.set(name, { text, source: path });
    }
    const templates = fromFiles.size > 0 ? fromFiles : templatesOf(config.chat_template, configPath);
    return new Tokenizer(json, config, templates, { tokenizerJson: tokenizerPath, config: configPath });
  }

  /**
   * Builds a tokenizer from the parsed (or raw text of) tokenizer.json and, optionally,
   * tokenizer_config.json's content.
   */
  static fromJson(tokenizerJson: TokenizerJson | string, config: TokenizerConfig = {}): Tokenizer {
    const what = 'the tokenizer.json given to Tokenizer.fromJson';
    let json: unknown = tokenizerJson;
    if (typeof tokenizerJson === 'string') {
      try {
        json = JSON.parse(tokenizerJson);
      } catch (err) {
        throw new Error(`Cannot load the tokenizer: ${what} is not valid JSON (${message(err)}).`, { cause: err });
      }
    }
    if (!isTokenizerJson(json)) throw new Error(`Cannot load the tokenizer: ${what} has no "model" object.`);
    const configWhat = 'the tokenizer config given to Tokenizer.fromJson';
    return new Tokenizer(json, config, templatesOf(config.chat_template, configWhat), { tokenizerJson: what, config: configWhat });
  }

  /** Token ids of `text`. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    // Typed here: the package's .d.ts files import without extensions, which NodeNext
    // resolution cannot follow, so its Encoding type arrives as `any`.
    const { ids, tokens }: { ids: (number | undefined)[]; tokens: string[] } = this.hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true });
    const missing = ids.findIndex((id) => typeof id !== 'number');
    if (missing >= 0) {
      throw new Error(`Cannot encode with the tokenizer in ${this.sources.tokenizerJson}: the token ${JSON.stringify(tokens[missing])} has no id and there is no unknown token.`);
    }
    return ids as number[];
  }

  /** Text of `ids`; ids the tokenizer does not know are skipped, as the Rust tokenizers do. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const known = ids.filter((id) => Number.isInteger(id) && this.hf.id_to_token(id) !== undefined);
    if (known.length === 0) return '';
    return this.hf.decode(known, { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /** Number of ids (largest id + 1), added tokens included: the embedding rows a model needs. */
  get vocabSize(): number {
    return this.maxId + 1;
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  get bosToken(): string | undefined {
    return this.special.bos_token;
  }

  get eosToken(): string | undefined {
    return this.special.eos_token;
  }

  get bosTokenId(): number | undefined {
    return this.idOf(this.special.bos_token);
  }

  get eosTokenId(): number | undefined {
    return this.idOf(this.special.eos_token);
  }

  get padTokenId(): number | undefined {
    return this.idOf(this.special.pad_token);
  }

  get unkTokenId(): number | undefined {
    return this.idOf(this.special.unk_token);
  }

  /** Ids of the added tokens marked special (what skipSpecialTokens drops). */
  get specialTokenIds(): number[] {
    return [...this.hf.get_added_tokens_decoder().values()].filter((t) => t.special).map((t) => t.id).sort((a, b) => a - b);
  }

  get hasChatTemplate(): boolean {
    return this.templates.size > 0;
  }

  /** Names of the chat templates ("default" for a single one). */
  get chatTemplateNames(): string[] {
    return [...this.templates.keys()];
  }

  /**
   * Renders `messages` with the chat template, as transformers'
   * `apply_chat_template(messages, tokenize=False, add_generation_prompt=...)` does.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    const entry = this.pickTemplate(options.template);
    let compiled = entry.compiled;
    if (compiled === undefined) {
      try {
        compiled = new Template(entry.text);
      } catch (err) {
        throw new Error(`The chat template in ${entry.source} cannot be parsed: ${message(err)}.`, { cause: err });
      }
      entry.compiled = compiled;
    }
    if (messages.length === 0) throw new Error('Cannot apply a chat template to an empty conversation: give at least one message.');
    try {
      // raise_exception (throwing the template's message), range, strftime_now and
      // namespace come from @huggingface/jinja's globals, as from transformers' environment.
      return compiled.render({
        ...this.special,
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: options.addGenerationPrompt ?? false,
        // transformers passes these as None when no tools or documents are given.
        tools: null,
        documents: null,
      });
    } catch (err) {
      throw new Error(`The chat template in ${entry.source} failed: ${message(err)}.`, { cause: err });
    }
  }

  private pickTemplate(name: string | undefined): TemplateEntry {
    if (this.templates.size === 0) {
      throw new Error(`The tokenizer has no chat template (neither ${this.sources.config} nor a chat_template.jinja beside it defines one).`);
    }
    const key = name ?? 'default';
    const entry = this.templates.get(key) ?? (name === undefined && this.templates.size === 1 ? [...this.templates.values()][0] : undefined);
    if (entry === undefined) {
      throw new Error(`The tokenizer has no chat template named "${key}" (it has ${[...this.templates.keys()].map((k) => `"${k}"`).join(', ')}).`);
    }
    return entry;
  }

  private idOf(token: string | undefined): number | undefined {
    return token === undefined ? undefined : this.hf.token_to_id(token);
  }
}

/**
 * Incremental detokenizer for generation: push ids one at a time and get back only the
 * text they complete. Text is held back while it ends in U+FFFD (an incomplete UTF-8
 * character or byte-level sequence), and each step decodes the previous chunk again as
 * context so that decoders that treat the first token specially (a leading space) stay
 * consistent: the concatenation of all outputs plus flush() equals decode(all ids).
 */
export class StreamDecoder {
  private ids: number[] = [];
  private prefix = 0; // start of the context window
  private read = 0; // ids before this index have been emitted
  private emitted = '';

  constructor(private readonly tokenizer: Tokenizer, private readonly options: DecodeOptions = {}) {}

  push(id: number): string {
    this.ids.push(id);
    const prefixText = this.tokenizer.decode(this.ids.slice(this.prefix, this.read), this.options);
    const text = this.tokenizer.decode(this.ids.slice(this.prefix), this.options);
    // Hold back while the window does not extend its context (rare decoders) or ends in
    // an incomplete character.
    if (!text.startsWith(prefixText) || text.length <= prefixText.length || text.endsWith('\uFFFD')) return '';
    this.prefix = this.read;
    this.read = this.ids.length;
    const out = text.slice(prefixText.length);
    this.emitted += out;
    return out;
  }

  /** Emits whatever is held back (e.g. an incomplete character at the end of generation) and resets. */
  flush(): string {
    const full = this.tokenizer.decode(this.ids, this.options);
    const out = full.startsWith(this.emitted) ? full.slice(this.emitted.length) : this.tokenizer.decode(this.ids.slice(this.read), this.options);
    this.ids = [];
    this.prefix = 0;
    this.read = 0;
    this.emitted = '';
    return out;
  }
}

// ---------------------------------------------------------------------------------------

function namedSpecialTokens(config: TokenizerConfig, source: string): Partial<Record<NamedSpecial, string>> {
  const out: Partial<Record<NamedSpecial, string>> = {};
  for (const key of NAMED_SPECIAL) {
    const spec = config[key];
    if (spec === undefined || spec === null) continue;
    out[key] = contentOf(spec, `${source}: "${key}"`);
  }
  return out;
}

function contentOf(spec: unknown, what: string): string {
  if (typeof spec === 'string') return spec;
  if (isObject(spec) && typeof spec.content === 'string') return spec.content;
  throw new Error(`Cannot load the tokenizer: ${what} must be a string or an object with a "content" string, got ${JSON.stringify(spec)}.`);
}

function listOf(v: TokenizerConfig['extra_special_tokens']): TokenSpec[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : Object.values(v);
}

/**
 * Applies what transformers does to the backend tokenizer on load: adds the config's
 * added_tokens_decoder and special tokens that tokenizer.json lacks (as special added
 * tokens, reusing a vocab id when the string is in the vocab), and rebuilds the
 * post-processor from add_bos_token / add_eos_token when the config sets either (or when
 * tokenizer.json has none).
 */
function prepareJson(json: TokenizerJson, config: TokenizerConfig, special: Partial<Record<NamedSpecial, string>>, sources: Sources): TokenizerJson {
  const model = json.model;
  if (model.type !== undefined && !['BPE', 'WordPiece', 'Unigram'].includes(String(model.type))) {
    throw new Error(`Cannot load the tokenizer: ${sources.tokenizerJson} has a ${model.type} model, and only BPE, WordPiece and Unigram are supported.`);
  }
  const added: AddedTokenJson[] = (json.added_tokens ?? []).map((t) => ({ ...t }));
  const byContent = new Map(added.map((t) => [t.content, t]));
  const vocab = vocabMap(model);
  let nextId = 0;
  for (const id of vocab.values()) nextId = Math.max(nextId, id + 1);
  for (const t of added) nextId = Math.max(nextId, t.id + 1);
  const add = (content: string, flags: Partial<AddedTokenJson>): void => {
    if (byContent.has(content)) return;
    const token: AddedTokenJson = {
      id: vocab.get(content) ?? nextId++,
      content,
      single_word: flags.single_word ?? false,
      lstrip: flags.lstrip ?? false,
      rstrip: flags.rstrip ?? false,
      normalized: flags.normalized ?? false,
      special: flags.special ?? true,
    };
    added.push(token);
    byContent.set(content, token);
    nextId = Math.max(nextId, token.id + 1);
  };
  // Like transformers: decoder entries in key order, then named, then extra special tokens;
  // the backend assigns the ids (the decoder's keys are not used for new tokens).
  const decoderEntries = Object.entries(config.added_tokens_decoder ?? {}).map(([id, token]) => {
    if (!/^\d+$/.test(id) || !isObject(token) || typeof token.content !== 'string') {
      throw new Error(`Cannot load the tokenizer: ${sources.config} has an invalid added_tokens_decoder entry "${id}".`);
    }
    return { key: Number(id), token };
  });
  for (const { token } of decoderEntries.sort((x, y) => x.key - y.key)) add(token.content, token);
  const specs: unknown[] = [...NAMED_SPECIAL.map((k) => config[k]), ...listOf(config.extra_special_tokens), ...listOf(config.additional_special_tokens)];
  for (const spec of specs) {
    if (spec === undefined || spec === null) continue;
    const content = contentOf(spec, `${sources.config}: a special token`);
    // A string special token is added as AddedToken(content, special=True), whose normalized is False.
    add(content, isObject(spec) ? { ...spec, special: true } : {});
  }
  let postProcessor = json.post_processor ?? null;
  if ('add_bos_token' in config || 'add_eos_token' in config || postProcessor === null) {
    postProcessor = templateProcessing(config.add_bos_token === true ? special.bos_token : undefined, config.add_eos_token === true ? special.eos_token : undefined);
  }
  return {
    ...json,
    normalizer: json.normalizer ?? null,
    pre_tokenizer: json.pre_tokenizer ?? null,
    decoder: json.decoder ?? null,
    post_processor: postProcessor,
    added_tokens: added,
  };
}

/** transformers' update_post_processor: "[bos] $A [eos]" and "[bos] $A [eos] [bos] $B [eos]". */
function templateProcessing(bos: string | undefined, eos: string | undefined): Record<string, unknown> {
  const seq = (id: 'A' | 'B', typeId: number): unknown[] => [
    ...(bos === undefined ? [] : [{ SpecialToken: { id: bos, type_id: typeId } }]),
    { Sequence: { id, type_id: typeId } },
    ...(eos === undefined ? [] : [{ SpecialToken: { id: eos, type_id: typeId } }]),
  ];
  return { type: 'TemplateProcessing', single: seq('A', 0), pair: [...seq('A', 0), ...seq('B', 1)], special_tokens: {} };
}

/** transformers v5 cleans up spaces only when asked, and never for BPE models unless forced. */
function cleansUp(config: TokenizerConfig, json: TokenizerJson): boolean {
  if (config.clean_up_tokenization_spaces !== true) return false;
  const isBpe = json.model.type === 'BPE' || (json.model.type === undefined && 'merges' in json.model);
  return !isBpe || config.clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output === true;
}

function vocabMap(model: TokenizerJson['model']): Map<string, number> {
  const vocab = model.vocab;
  if (Array.isArray(vocab)) {
    // Unigram: [[piece, score], ...]; the id is the index.
    return new Map(vocab.map((entry, i) => [Array.isArray(entry) ? String(entry[0]) : String(entry), i]));
  }
  if (isObject(vocab)) return new Map(Object.entries(vocab).filter((e): e is [string, number] => typeof e[1] === 'number'));
  return new Map();
}

function templatesOf(field: TokenizerConfig['chat_template'], source: string): Map<string, TemplateEntry> {
  const out = new Map<string, TemplateEntry>();
  if (field === undefined || field === null) return out;
  if (typeof field === 'string') {
    out.set('default', { text: field, source });
  } else if (Array.isArray(field)) {
    for (const t of field) {
      if (!isObject(t) || typeof t.name !== 'string' || typeof t.template !== 'string') {
        throw new Error(`Cannot load the tokenizer: ${source} has a chat_template list entry without a "name" and a "template" string.`);
      }
      out.set(t.name, { text: t.template, source: `${source} (template "${t.name}")` });
    }
  } else if (isObject(field)) {
    for (const [name, text] of Object.entries(field)) {
      if (typeof text !== 'string') throw new Error(`Cannot load the tokenizer: ${source} has a chat template "${name}" that is not a string.`);
      out.set(name, { text, source: `${source} (template "${name}")` });
    }
  } else {
    throw new Error(`Cannot load the tokenizer: ${source} has a chat_template that is neither a string nor a list of named templates.`);
  }
  return out;
}

async function readJson(path: string, required: boolean): Promise<unknown> {
  const text = await readText(path);
  if (text === undefined) {
    if (required) throw new Error(`Cannot load the tokenizer: ${path} does not exist (a Hugging Face model folder needs tokenizer.json).`);
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`Cannot load the tokenizer: ${path} is not valid JSON (${message(err)}).`, { cause: err });
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`Cannot load the tokenizer: ${path} cannot be read (${message(err)}).`, { cause: err });
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isTokenizerJson(v: unknown): v is TokenizerJson {
  return isObject(v) && isObject(v.model);
}

function message(err: unknown): string {
  return trimPeriod(err instanceof Error ? err.message : String(err));
}

function trimPeriod(s: string): string {
  return s.trim().replace(/\.$/, '');
}
