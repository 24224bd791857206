// llama.cpp itself (node-llama-cpp's prebuilt binary, nothing compiled) answers questions from a GGUF file, greedily.
// Called by helpers/llamacpp.py:  node llamacpp_answer.mjs INSTALL_DIR JOB.json RESULT.json
// (INSTALL_DIR holds node_modules/node-llama-cpp: set-up installs it under .cache/, away from the course's files)
//
// JOB: {gguf, threads, max_new_tokens, stops: [token ids], how: "ids" | "template", items: [...]}
//   how "ids":      each item is {ids: [...]}, the course's own prompt token ids, given to llama.cpp as they are;
//   how "template": each item is {messages: [{role, content}, ...]}, rendered by the chat template stored in the
//                   file (tokenizer.chat_template, through node-llama-cpp's JinjaTemplateChatWrapper) and tokenized
//                   by llama.cpp: what llama-cli --jinja, llama-server and LM Studio do with a user's chat.
// RESULT: {template: the file's chat template, answers: [{prompt: [ids], ids: [generated ids], ended: bool}]}
import fs from "node:fs";
import {createRequire} from "node:module";
import path from "node:path";
import {pathToFileURL} from "node:url";

const [installDir, jobPath, resultPath] = process.argv.slice(2);
const entry = createRequire(path.join(path.resolve(installDir), "package.json")).resolve("node-llama-cpp");
const {getLlama, JinjaTemplateChatWrapper, LlamaLogLevel} = await import(pathToFileURL(entry).href);
const job = JSON.parse(fs.readFileSync(jobPath, "utf8"));

const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: job.threads});
const model = await llama.loadModel({modelPath: job.gguf});
const context = await model.createContext({contextSize: 2048, threads: job.threads});  // the cores you have
const sequence = context.getSequence();
const template = model.fileInfo.metadata?.tokenizer?.chat_template ?? "";
const stops = new Set(job.stops);

function promptOf(item) {
    if (job.how === "ids")
        return item.ids;
    if (!template)
        throw new Error(`${job.gguf} stores no chat template (tokenizer.chat_template)`);
    const wrapper = new JinjaTemplateChatWrapper({template, tokenizer: model.tokenizer});
    const chatHistory = item.messages.map((m) => (
        m.role === "system" ? {type: "system", text: m.content}
            : m.role === "user" ? {type: "user", text: m.content}
                : {type: "model", response: [m.content]}));
    chatHistory.push({type: "model", response: []});  // the answer to come: the template's generation prompt
    const {contextText} = wrapper.generateContextState({chatHistory});
    return contextText.tokenize(model.tokenizer);
}

const answers = [];
for (const item of job.items) {
    const prompt = promptOf(item);
    await sequence.clearHistory();
    const ids = [];
    for await (const token of sequence.evaluate(prompt, {temperature: 0})) {
        if (stops.has(token) || model.isEogToken(token))
            break;
        ids.push(token);
        if (ids.length >= job.max_new_tokens)
            break;
    }
    // an answer that stopped before the limit ended by itself: at one of the stop tokens above, or at the model's
    // end-of-generation token, where node-llama-cpp ends the generation itself without yielding the token
    answers.push({prompt: Array.from(prompt), ids, ended: ids.length < job.max_new_tokens});
}
fs.writeFileSync(resultPath, JSON.stringify({template, answers}));
await context.dispose();
await model.dispose();
await llama.dispose();
