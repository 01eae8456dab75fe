// The --vs-torch options every benchmark takes (`afd bench train`, its LoRA form in
// bench-lora.ts, `afd bench generate`).
import type { TorchOptions } from '../../bench/train.ts';

/** Where the --vs-torch reference runs: every benchmark takes these options. */
export const TORCH_OPTIONS = { 'torch-device': { type: 'string' }, 'torch-bf16': { type: 'boolean', default: false } } as const;

/** --torch-device as the references take it (checked), and that --torch-bf16 goes with --vs-torch. */
export function torchDevice(values: { 'torch-device'?: string; 'torch-bf16'?: boolean; 'vs-torch'?: boolean }): TorchOptions['device'] {
  const device = values['torch-device'] ?? 'cpu';
  if (!['cpu', 'cuda', 'auto'].includes(device)) throw new Error(`--torch-device must be cpu, cuda or auto, not '${device}'`);
  if ((values['torch-device'] !== undefined || values['torch-bf16']) && !values['vs-torch']) throw new Error('--torch-device and --torch-bf16 say where the PyTorch reference runs: give them with --vs-torch');
  return device as TorchOptions['device'];
}
