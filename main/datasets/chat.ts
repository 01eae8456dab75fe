// Chats ({"messages": [...]}) become (prompt, response) with a model's chat template: the
// prompt is every turn before the last, rendered up to the start of an assistant turn; the
// response is what the template adds for the final assistant message.
import type { Tokenizer } from '../../native-models/tokenizer/tokenizer.ts';
import type { ChatMessage, RenderMessages } from './readers.ts';

export function chatRenderer(tokenizer: Tokenizer): RenderMessages {
  return (messages: ChatMessage[]) => {
    // Checked per chat, not up front: data without chats needs no template.
    if (!tokenizer.hasChatTemplate) throw new Error("the model has no chat template (tokenizer_config.json's chat_template); use a model that has one, or prompt/response lines");
    const last = messages[messages.length - 1];
    if (messages.length < 2 || last.role !== 'assistant') throw new Error('a chat must end with an assistant message after at least one other');
    const prompt = tokenizer.applyChatTemplate(messages.slice(0, -1), { addGenerationPrompt: true });
    const full = tokenizer.applyChatTemplate(messages);
    // Templates that append end-of-turn markers still start the reply where the prompt ends.
    return { prompt, response: full.startsWith(prompt) ? full.slice(prompt.length) : last.content };
  };
}
