#!/usr/bin/env python3
"""Writes tests/rollout/sampler_fixture.json: the filtered sampling
distributions that transformers' own logits processors produce
(RepetitionPenalty, Temperature, TopK, TopP, MinP, in generate()'s order) for
fixed random logits, so the C sampler can be compared exactly.

    python3 tools/make_sampler_fixtures.py
"""
import json

import torch
import transformers
from transformers.generation.logits_process import (LogitsProcessorList, MinPLogitsWarper,
                                                    RepetitionPenaltyLogitsProcessor,
                                                    TemperatureLogitsWarper, TopKLogitsWarper,
                                                    TopPLogitsWarper)

torch.manual_seed(5)
V = 40
settings = [
    dict(temperature=1.0, top_p=1.0, top_k=0, min_p=0.0, repetition_penalty=1.0),
    dict(temperature=0.7, top_p=1.0, top_k=5, min_p=0.0, repetition_penalty=1.0),
    dict(temperature=1.0, top_p=0.9, top_k=0, min_p=0.0, repetition_penalty=1.0),
    dict(temperature=1.3, top_p=0.8, top_k=12, min_p=0.0, repetition_penalty=1.0),
    dict(temperature=1.0, top_p=1.0, top_k=0, min_p=0.1, repetition_penalty=1.0),
    dict(temperature=0.9, top_p=0.95, top_k=0, min_p=0.05, repetition_penalty=1.0),
    dict(temperature=1.0, top_p=0.7, top_k=20, min_p=0.2, repetition_penalty=1.3),
    dict(temperature=0.6, top_p=1.0, top_k=0, min_p=0.0, repetition_penalty=1.5),
    dict(temperature=1.0, top_p=0.3, top_k=0, min_p=0.0, repetition_penalty=1.0),
]
history = [3, 7, 7, 11, 0, 39]
cases = []
for i, s in enumerate(settings * 3):
    logits = torch.randn(1, V) * (1.0 + i % 3)
    procs = LogitsProcessorList()
    if s["repetition_penalty"] != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(s["repetition_penalty"]))
    procs.append(TemperatureLogitsWarper(s["temperature"]))
    if s["top_k"] > 0:
        procs.append(TopKLogitsWarper(s["top_k"]))
    if s["top_p"] < 1.0:
        procs.append(TopPLogitsWarper(s["top_p"]))
    if s["min_p"] > 0.0:
        procs.append(MinPLogitsWarper(s["min_p"]))
    ids = torch.tensor([history])
    scores = procs(ids, logits.clone().double())
    probs = torch.softmax(scores, dim=-1)[0]
    cases.append(dict(settings=s, logits=logits[0].tolist(), probs=probs.tolist()))
with open("tests/rollout/sampler_fixture.json", "w") as f:
    json.dump({"transformers_version": transformers.__version__, "vocab": V,
               "history": history, "cases": cases}, f, indent=0)
print(f"wrote {len(cases)} cases")
