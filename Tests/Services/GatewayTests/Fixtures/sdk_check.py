"""Drives the Nimbus LLM gateway with the official OpenAI and Anthropic Python SDKs.

    python sdk_check.py BASE_URL        (keys in GATEWAY_KEY, GATEWAY_POOR_KEY)

Prints one line per check and exits non-zero at the first failure. Used by GatewayTests.
"""
import json
import os
import sys

import anthropic
import openai

base = sys.argv[1]
key = os.environ["GATEWAY_KEY"]
poor_key = os.environ["GATEWAY_POOR_KEY"]
weather = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def check(name, condition, detail=""):
    if not condition:
        print(f"FAIL {name}: {detail}")
        sys.exit(1)
    print(f"ok {name}")


client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)

reply = client.chat.completions.create(model="memory", messages=[{"role": "user", "content": "Hello from the OpenAI SDK"}])
check("openai chat", reply.choices[0].message.content == "Hello from the OpenAI SDK" and reply.usage.prompt_tokens > 0
      and reply.choices[0].finish_reason == "stop", reply)

text, usage, finish = "", None, None
for chunk in client.chat.completions.create(model="memory", messages=[{"role": "user", "content": "Streaming through the gateway"}],
                                            stream=True, stream_options={"include_usage": True}):
    if chunk.choices:
        text += chunk.choices[0].delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
    if chunk.usage:
        usage = chunk.usage
check("openai stream", text == "Streaming through the gateway" and finish == "stop" and usage is not None and usage.completion_tokens > 0,
      (text, finish, usage))

reply = client.chat.completions.create(model="memory", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[weather],
                                       tool_choice={"type": "function", "function": {"name": "get_weather"}})
calls = reply.choices[0].message.tool_calls or []
check("openai tools", reply.choices[0].finish_reason == "tool_calls" and len(calls) == 1 and calls[0].function.name == "get_weather"
      and json.loads(calls[0].function.arguments) == {"city": ""}, reply)

history = [{"role": "user", "content": "Weather in Paris?"},
           {"role": "assistant", "content": None, "tool_calls": [c.model_dump() for c in calls]},
           {"role": "tool", "tool_call_id": calls[0].id, "content": "18 C and sunny"}]
reply = client.chat.completions.create(model="memory", messages=history, tools=[weather])
check("openai tool results", "18 C and sunny" in (reply.choices[0].message.content or ""), reply)

streamed_calls = {}
for chunk in client.chat.completions.create(model="memory", messages=[{"role": "user", "content": "Weather?"}], tools=[weather],
                                            tool_choice="required", stream=True):
    for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
        entry = streamed_calls.setdefault(delta.index, {"name": "", "arguments": ""})
        entry["name"] += delta.function.name or ""
        entry["arguments"] += delta.function.arguments or ""
check("openai streamed tools", streamed_calls.get(0, {}).get("name") == "get_weather"
      and json.loads(streamed_calls[0]["arguments"]) == {"city": ""}, streamed_calls)

embeddings = client.embeddings.create(model="nimbus-hashing-384", input=["the cat sat", "the cat sat down"])
check("openai embeddings", len(embeddings.data) == 2 and len(embeddings.data[0].embedding) == 384 and embeddings.usage.prompt_tokens > 0,
      embeddings.usage)
floats = client.embeddings.create(model="nimbus-hashing-384", input="one text", encoding_format="float")
check("openai embeddings as floats", len(floats.data[0].embedding) == 384)

ids = [model.id for model in client.models.list()]
check("openai models", "memory" in ids and "nimbus-hashing-384" in ids, ids)

try:
    openai.OpenAI(base_url=base + "/v1", api_key="sk-not-a-key", max_retries=0).chat.completions.create(
        model="memory", messages=[{"role": "user", "content": "hi"}])
    check("openai invalid key", False, "no error")
except openai.AuthenticationError as error:
    check("openai invalid key", error.status_code == 401 and error.body.get("code") == "invalid_api_key", error.body)

poor = openai.OpenAI(base_url=base + "/v1", api_key=poor_key, max_retries=0)
poor.chat.completions.create(model="priced", messages=[{"role": "user", "content": "this call spends the whole budget"}])
try:
    poor.chat.completions.create(model="priced", messages=[{"role": "user", "content": "one more"}])
    check("openai over budget", False, "no error")
except openai.BadRequestError as error:
    check("openai over budget", error.body.get("code") == "budget_exceeded", error.body)
try:
    poor.chat.completions.create(model="memory", messages=[{"role": "user", "content": "not my model"}])
    check("openai model allow-list", False, "no error")
except openai.PermissionDeniedError as error:
    check("openai model allow-list", error.body.get("code") == "model_not_allowed", error.body)

claude = anthropic.Anthropic(base_url=base, api_key=key, max_retries=0)
message = claude.messages.create(model="memory", max_tokens=200, system="Be brief.",
                                 messages=[{"role": "user", "content": "Hello from the Anthropic SDK"}])
check("anthropic messages", message.content[0].text == "Hello from the Anthropic SDK" and message.stop_reason == "end_turn"
      and message.usage.input_tokens > 0, message)

with claude.messages.stream(model="memory", max_tokens=200, messages=[{"role": "user", "content": "Streaming Claude"}]) as stream:
    streamed = "".join(stream.text_stream)
    final = stream.get_final_message()
check("anthropic stream", streamed == "Streaming Claude" and final.usage.output_tokens > 0 and final.stop_reason == "end_turn", final)

message = claude.messages.create(model="memory", max_tokens=200, messages=[{"role": "user", "content": "Weather?"}],
                                 tools=[{"name": "get_weather", "description": "Weather", "input_schema": weather["function"]["parameters"]}],
                                 tool_choice={"type": "tool", "name": "get_weather"})
uses = [block for block in message.content if block.type == "tool_use"]
check("anthropic tools", message.stop_reason == "tool_use" and len(uses) == 1 and uses[0].name == "get_weather" and uses[0].input == {"city": ""},
      message)

followup = claude.messages.create(model="memory", max_tokens=200, tools=[{"name": "get_weather", "input_schema": weather["function"]["parameters"]}],
                                  messages=[{"role": "user", "content": "Weather?"},
                                            {"role": "assistant", "content": [{"type": "tool_use", "id": uses[0].id, "name": "get_weather", "input": {"city": "Oslo"}}]},
                                            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "-3 C"}]}])
check("anthropic tool results", "-3 C" in followup.content[0].text, followup)

try:
    anthropic.Anthropic(base_url=base, api_key="sk-not-a-key", max_retries=0).messages.create(
        model="memory", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    check("anthropic invalid key", False, "no error")
except anthropic.AuthenticationError as error:
    check("anthropic invalid key", error.status_code == 401)

try:
    anthropic.Anthropic(base_url=base, api_key=poor_key, max_retries=0).messages.create(
        model="priced", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    check("anthropic over budget", False, "no error")
except anthropic.BadRequestError as error:
    check("anthropic over budget", error.status_code == 400)

count = claude.messages.count_tokens(model="memory", system="Be brief.", messages=[{"role": "user", "content": "How many tokens is this?"}])
check("anthropic count_tokens", count.input_tokens > 5, count)

# n > 1: one choice per index.
reply = client.chat.completions.create(model="memory", n=2, messages=[{"role": "user", "content": "two of these"}])
check("openai n=2", [c.index for c in reply.choices] == [0, 1] and all(c.message.content == "two of these" for c in reply.choices)
      and reply.usage.prompt_tokens > 0, reply)
try:
    client.chat.completions.create(model="memory", n=2, stream=True, messages=[{"role": "user", "content": "x"}])
    check("openai n=2 streamed is refused", False, "no error")
except openai.BadRequestError as error:
    check("openai n=2 streamed is refused", error.body.get("param") == "n", error.body)

# The Responses API.
response = client.responses.create(model="memory", input="Hello from the Responses API", instructions="Be brief.")
check("responses text", response.output_text == "Hello from the Responses API" and response.status == "completed"
      and response.usage.input_tokens > 0 and response.usage.output_tokens > 0 and response.id.startswith("resp_"), response)
check("responses retrieve", client.responses.retrieve(response.id).output_text == response.output_text)

tool = {"type": "function", "name": "get_weather", "description": "Weather in a city", "strict": False,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
first = client.responses.create(model="memory", input=[{"role": "user", "content": "Weather in Paris?"}], tools=[tool], tool_choice="required")
calls = [item for item in first.output if item.type == "function_call"]
check("responses tools", len(calls) == 1 and calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": ""}, first)
second = client.responses.create(model="memory", previous_response_id=first.id, tools=[tool],
                                 input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "18 C and sunny"}])
check("responses previous_response_id", "get_weather" in second.output_text and "18 C and sunny" in second.output_text, second)

schema = {"type": "object", "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}}, "required": ["city", "celsius"],
          "additionalProperties": False}
structured = client.responses.create(model="memory", input="Give me the weather as JSON",
                                     text={"format": {"type": "json_schema", "name": "weather", "schema": schema, "strict": True}})
parsed = json.loads(structured.output_text)
check("responses structured output", set(parsed) == {"city", "celsius"}, structured.output_text)

deltas, kinds, completed = "", [], None
for event in client.responses.create(model="memory", input="Streaming the Responses API", stream=True):
    kinds.append(event.type)
    if event.type == "response.output_text.delta":
        deltas += event.delta
    if event.type == "response.completed":
        completed = event.response
check("responses stream", deltas == "Streaming the Responses API" and completed is not None and completed.output_text == deltas
      and kinds[0] == "response.created" and kinds[-1] == "response.completed" and completed.usage.output_tokens > 0, kinds)

with client.responses.stream(model="memory", input="Weather?", tools=[tool], tool_choice="required") as stream:
    final = stream.get_final_response()
streamed_calls = [item for item in final.output if item.type == "function_call"]
check("responses stream helper with tools", len(streamed_calls) == 1 and json.loads(streamed_calls[0].arguments) == {"city": ""}, final)

deleted = client.responses.delete(response.id)
try:
    client.responses.retrieve(response.id)
    check("responses delete", False, "still there")
except openai.NotFoundError:
    check("responses delete", True)

try:
    client.responses.create(model="memory", input="x", previous_response_id="resp_does_not_exist")
    check("responses unknown previous id", False, "no error")
except openai.NotFoundError as error:
    check("responses unknown previous id", error.body.get("param") == "previous_response_id", error.body)

# langchain-openai, on Chat Completions and on the Responses API.
from langchain_openai import ChatOpenAI
for responses_api in (False, True):
    llm = ChatOpenAI(model="memory", base_url=base + "/v1", api_key=key, max_retries=0, use_responses_api=responses_api)
    answer = llm.invoke("Hello from LangChain")
    check(f"langchain-openai invoke (responses api: {responses_api})", answer.text == "Hello from LangChain", answer)
    streamed = "".join(chunk.text for chunk in llm.stream("Streaming LangChain"))
    check(f"langchain-openai stream (responses api: {responses_api})", streamed == "Streaming LangChain", streamed)
    bound = llm.bind_tools([tool if responses_api else weather], tool_choice="get_weather")
    called = bound.invoke("Weather in Oslo?")
    check(f"langchain-openai tools (responses api: {responses_api})", called.tool_calls and called.tool_calls[0]["name"] == "get_weather", called)

print("all checks passed")
