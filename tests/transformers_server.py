"""A server nobody here wrote: Hugging Face's ``transformers serve``, with a tiny random Llama.

``build_tiny_model(folder)`` saves a two-layer Llama with random weights and a byte-level BPE
tokenizer trained on the book's own prompt templates, with a plain chat template. Its answers
are garbage, as a broken or wrongly configured teacher's would be; a length penalty in its
generation config (``exponential_decay_length_penalty``, a standard ``generate`` option the
server passes on) makes it stop after a few dozen tokens, so that a request costs a fraction
of a second on a CPU. ``TransformersServer`` runs ``transformers serve`` on 127.0.0.1 in a
subprocess, without a pinned model (it loads what a request names), and counts the requests
it logged, by path and status.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
STOP_AFTER = 12  # tokens before the length penalty starts pushing towards the end token
START_TIMEOUT_S = 180.0
_ACCESS = re.compile(r'"(GET|POST) (\S+) HTTP/1\.1" (\d{3})')


def build_tiny_model(folder: Path) -> Path:
    """Save the tiny random Llama and its tokenizer into ``folder``; returns the folder."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from phi1lib.teacher.prompts import available_templates, load_template
    from phi1lib.training.tokenizer import train_bpe_tokenizer

    templates = [load_template(name) for name in available_templates()]
    tokenizer = train_bpe_tokenizer([t.system + "\n" + t.user for t in templates] * 3, 400)
    tokenizer.chat_template = CHAT_TEMPLATE
    special = {
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        **special,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        **special, exponential_decay_length_penalty=(STOP_AFTER, 1.5)
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TransformersServer:
    """``with TransformersServer(home) as server:`` serves at ``server.base_url`` until exit.

    ``home`` is the server's own Hugging Face home (an empty cache: it lists only the models it
    has loaded) and holds its log.
    """

    def __init__(self, home: Path):
        self.home = home
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = home / "serve.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> TransformersServer:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "HF_HOME": str(self.home / "hf"),
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1",
        }
        command = [
            sys.executable,
            "-m",
            "transformers.cli.transformers",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--device",
            "cpu",
        ]
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"transformers serve exited: {self.log_path.read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.25)
        self.__exit__()
        raise RuntimeError(f"transformers serve did not answer in {START_TIMEOUT_S:.0f} s")

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def requests(self) -> Counter[tuple[str, str, int]]:
        """``(method, path, status)`` -> how many the server's access log shows so far."""
        counts: Counter[tuple[str, str, int]] = Counter()
        for method, path, status in _ACCESS.findall(self.log_path.read_text(errors="replace")):
            counts[(method, path, int(status))] += 1
        return counts

    def chat_requests(self) -> int:
        return sum(
            n for (_, path, _), n in self.requests().items() if path.endswith("/completions")
        )
