"""pytest configuration for the llama-index-rs differential suite."""

import os
import pathlib

import llama_index.core as _lic

# LlamaIndex's tokenizer data ships in the package; without this, code paths try to download it.
os.environ["TIKTOKEN_CACHE_DIR"] = str(
    pathlib.Path(_lic.__file__).parent / "_static" / "tiktoken_cache"
)

import pytest
from _support import DATA_DIR, STANDIN, Corpus, Ours, Pair
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "dev",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_report_header(config: pytest.Config) -> str:
    return f"llama-index-rs suite: ours = {Ours.__module__}.{Ours.__name__}" + (
        " (STAND-IN: oracle vs oracle)" if STANDIN else ""
    )


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    return Corpus(DATA_DIR)


@pytest.fixture
def ours_cls() -> type:
    return Ours


@pytest.fixture
def ours() -> object:
    return Ours()


@pytest.fixture
def pair() -> Pair:
    return Pair()
