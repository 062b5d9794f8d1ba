"""All configuration in one place: CITEQA_* environment variables (or a .env file)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from citeqa.home import bundled, default_home
from citeqa.index.answering import AnswerSettings
from citeqa.index.builder import IndexSettings
from citeqa.index.chunking import ChunkerSettings
from citeqa.index.embedding import DEFAULT_MODEL
from citeqa.index.engine import EngineSettings
from citeqa.index.lexical import LexicalSettings
from citeqa.index.search import FusionMethod, RetrievalSettings, SearchMode

DEFAULT_COLLECTION = "default"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITEQA_", env_file=".env", extra="ignore")

    home: Path = Field(default_factory=default_home, description="data home: indexes and original files")
    corpus_dir: Path = Field(default_factory=lambda: bundled("seeds"), description="documents indexed when there is no index")
    index_dir: Path | None = Field(None, description="the index folder; default: <home>/collections/default")
    model: str = Field(DEFAULT_MODEL, description="embedding model: 'bundled:all-MiniLM-L6-v2', or a local path")
    embed_batch_size: int = Field(64, ge=1)

    chunk_size: int = Field(ChunkerSettings.chunk_size, ge=50)
    chunk_overlap: int = Field(ChunkerSettings.chunk_overlap, ge=0)
    title_in_passages: bool = IndexSettings.title_in_passages
    bm25_method: str = LexicalSettings.method
    bm25_k1: float = Field(LexicalSettings.k1, gt=0)
    bm25_b: float = Field(LexicalSettings.b, ge=0, le=1)
    stemmer: str = LexicalSettings.stemmer
    stopwords: str = LexicalSettings.stopwords

    search_mode: SearchMode = RetrievalSettings.mode
    fusion: FusionMethod = RetrievalSettings.fusion
    dense_weight: float = Field(RetrievalSettings.dense_weight, ge=0, le=1)
    rrf_k: int = Field(RetrievalSettings.rrf_k, ge=1)
    candidates: int = Field(RetrievalSettings.candidates, ge=1)
    sentence_weight: float = Field(RetrievalSettings.sentence_weight, ge=0, le=1)
    feedback_weight: float = Field(RetrievalSettings.feedback_weight, ge=0)
    feedback_depth: int = Field(RetrievalSettings.feedback_depth, ge=1)
    quote_lexical_weight: float = Field(EngineSettings.quote_lexical_weight, ge=0)
    quote_rerank_weight: float = Field(EngineSettings.quote_rerank_weight, ge=0)
    rerank_depth: int = Field(EngineSettings.rerank_depth, ge=1)
    min_relevance: float = AnswerSettings.min_relevance
    answer_top_k: int = Field(5, ge=1, le=50, description="passages considered by /v1/ask and chat")

    llm_base_url: str | None = Field(None, description="an OpenAI-compatible server (…/v1); unset: extractive answers")
    llm_model: str = Field("local-model", description="model name sent to the upstream server")
    llm_api_key: str | None = Field(None, description="bearer token for the upstream server, if it needs one")
    llm_timeout: float = Field(120.0, gt=0, description="seconds to wait for the upstream server")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    @model_validator(mode="after")
    def _index_in_home(self) -> Settings:
        if self.index_dir is None:
            self.index_dir = self.home / "collections" / DEFAULT_COLLECTION
        return self

    def engine_settings(self) -> EngineSettings:
        index = IndexSettings(
            chunker=ChunkerSettings(self.chunk_size, self.chunk_overlap),
            lexical=LexicalSettings(self.bm25_method, self.bm25_k1, self.bm25_b, self.stemmer, self.stopwords),
            title_in_passages=self.title_in_passages,
        )
        retrieval = RetrievalSettings(
            self.search_mode,
            self.fusion,
            self.dense_weight,
            self.rrf_k,
            self.candidates,
            self.sentence_weight,
            self.feedback_weight,
            self.feedback_depth,
        )
        answer = AnswerSettings(min_relevance=self.min_relevance)
        return EngineSettings(
            self.model, index, retrieval, answer, self.quote_lexical_weight, self.quote_rerank_weight, self.rerank_depth
        )
