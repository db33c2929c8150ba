"""Helpers for the job-method tests; the demo model's HF, NF4, INT8 and GPTQ builds are session
fixtures in tests/support/artifacts.py."""


def generate(model, tokenizer, prompt: str = "The capital of France is", new_tokens: int = 8) -> str:
    """Greedy continuation of prompt (the new text only)."""
    import torch

    ids = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=new_tokens, do_sample=False)
    return tokenizer.decode(out[0][ids["input_ids"].shape[1]:], skip_special_tokens=True)
