// The Vercel AI SDK (`ai` with `@ai-sdk/azure` and `@ai-sdk/openai`) against a gateway on loopback.
//
//   GATEWAY_URL=http://127.0.0.1:8000 API_KEY=... node tests/node/ai_sdk.mjs
//
// Prints one JSON object: for each client, what generateText / streamText / a tool call returned, and the URL
// of every request the SDK sent. Its fetch refuses any URL outside the gateway, so nothing can reach the internet.
import { createAzure } from "@ai-sdk/azure";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const gateway = process.env.GATEWAY_URL;
const apiKey = process.env.API_KEY;
if (!gateway || !apiKey) {
  throw new Error("GATEWAY_URL and API_KEY are required");
}

const sent = [];
async function loopbackFetch(input, init) {
  const url = typeof input === "string" ? input : input.url;
  if (!url.startsWith(`${gateway}/`)) {
    throw new Error(`refused to fetch ${url}: only the gateway under test may be called`);
  }
  sent.push(`${init?.method ?? "GET"} ${url.slice(gateway.length)}`);
  return fetch(input, init);
}

const getWeather = tool({
  description: "The weather in a city.",
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => `sunny in ${city}`,
});

async function exercise(model) {
  sent.length = 0;
  const plain = await generateText({ model, prompt: "Say hello", maxRetries: 0 });
  const stream = streamText({ model, prompt: "Tell me a short story", maxRetries: 0 });
  const pieces = [];
  for await (const piece of stream.textStream) {
    pieces.push(piece);
  }
  const tools = await generateText({
    model,
    prompt: "Use get_weather for Paris",
    tools: { get_weather: getWeather },
    stopWhen: stepCountIs(3),
    maxRetries: 0,
  });
  return {
    text: plain.text,
    usage: plain.usage,
    responseId: plain.response.id,
    pieces,
    streamedUsage: await stream.usage,
    toolCalls: tools.steps.flatMap((step) => step.toolCalls.map((call) => ({ name: call.toolName, input: call.input }))),
    toolResults: tools.steps.flatMap((step) => step.toolResults.map((result) => result.output)),
    toolAnswer: tools.text,
    steps: tools.steps.length,
    sent: [...sent],
  };
}

async function generated(model) {
  sent.length = 0;
  const { text } = await generateText({ model, prompt: "Say hello", maxRetries: 0 });
  return { text, sent: [...sent] };
}

async function refused(model) {
  sent.length = 0;
  try {
    await generateText({ model, prompt: "Say hello", maxRetries: 0 });
    return { status: null, sent: [...sent] };
  } catch (error) {
    return { status: error.statusCode ?? null, body: error.responseBody ?? String(error), sent: [...sent] };
  }
}

const azureV1 = createAzure({ baseURL: `${gateway}/openai/v1`, apiKey, fetch: loopbackFetch });
const azurePrefix = createAzure({ baseURL: `${gateway}/openai`, apiKey, fetch: loopbackFetch });
const azureDeployments = createAzure({
  baseURL: `${gateway}/openai`,
  apiKey,
  apiVersion: "2025-04-01-preview",
  useDeploymentBasedUrls: true,
  fetch: loopbackFetch,
});
const openai = createOpenAI({ baseURL: `${gateway}/v1`, apiKey, fetch: loopbackFetch });

const results = {
  azureDefault: await exercise(azureV1("gpt-4o")),
  openaiResponses: await exercise(openai.responses("gpt-4o")),
  openaiChat: await exercise(openai.chat("gpt-4o")),
  azureDeployments: await generated(azureDeployments("gpt-4o")),
  azurePrefix: await refused(azurePrefix("gpt-4o")),
};
process.stdout.write(`${JSON.stringify(results)}\n`);
