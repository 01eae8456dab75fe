// Hugging Face checkpoints in and out, and the inference-only ONNX export.

export { importHfModel, mapHfModel, type ImportedModel, type MappedModel } from './hf-import.ts';
export { exportHfModel, exportInferenceOnnx, checkWeights, TOKENIZER_FILES, type HfExportOptions, type OnnxExportOptions } from './hf-export.ts';
export { convertGgufToHf, ggufModelFolder, isGgufPath, modelFolder, modelCacheRoot, GGUF_SOURCE_FILE, type GgufSource } from './gguf/to-hf.ts';
