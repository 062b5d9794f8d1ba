"""All configuration in one place: CITEQA_* environment variables (or a .env file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from citeqa.home import bundled, default_home
from citeqa.index.answering.claims import ClaimSettings, UnsupportedAction
from citeqa.index.answering.compose import MIN_RELEVANCE, AnswerSettings
from citeqa.index.engine import EngineSettings
from citeqa.index.models.embedding import DEFAULT_BATCH_SIZE, DEFAULT_ENCODER, DEFAULT_MODEL, EncoderName
from citeqa.index.parsing.parsed import MIB, ParseLimits
from citeqa.index.ranking.search import FusionMethod, RetrievalSettings, SearchMode
from citeqa.index.text.chunking import ChunkerSettings
from citeqa.index.text.lexical import LexicalSettings
from citeqa.index.writing.builder import IndexSettings
from citeqa.service.limits import (
    DEFAULT_MAX_CHAT_CHARS,
    DEFAULT_MAX_CHAT_MESSAGES,
    DEFAULT_MAX_QUESTION_CHARS,
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_TOP_K,
    Limits,
)

DEFAULT_COLLECTION = "default"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITEQA_", env_file=".env", extra="ignore")

    home: Path = Field(default_factory=default_home, description="data home: indexes and original files")
    corpus_dir: Path = Field(default_factory=lambda: bundled("seeds"), description="documents indexed when there is no index")
    index_dir: Path | None = Field(None, description="the index folder; default: <home>/collections/default")
    model: str = Field(DEFAULT_MODEL, description="embedding model: 'bundled:all-MiniLM-L6-v2', or a local path")
    embed_batch_size: int = Field(DEFAULT_BATCH_SIZE, ge=1)
    encoder: EncoderName = Field(
        DEFAULT_ENCODER, description="onnx (onnxruntime, fp32), onnx-int8 (int8 weights) or torch (sentence-transformers)"
    )
    models_dir: Path | None = Field(None, description="where ONNX exports of the model are cached; default: <home>/models")

    chunk_size: int = Field(ChunkerSettings.chunk_size, ge=50)
    chunk_overlap: int = Field(ChunkerSettings.chunk_overlap, ge=0)
    title_in_passages: bool = IndexSettings.title_in_passages
    chunk_vectors: Literal["encoded", "derived"] = Field(
        IndexSettings.chunk_vectors, description="encoded (each chunk embedded) or derived (from its sentences' vectors)"
    )
    unit_vectors: Literal["encoded", "pooled"] = Field(
        IndexSettings.unit_vectors, description="encoded (each sentence embedded) or pooled (from its chunk's pass)"
    )
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
    min_relevance: float | None = Field(
        None, description="abstention threshold; unset: 0.42, or 0.35 with pooled sentence vectors (MIN_RELEVANCE)"
    )
    companion_ratio: float = Field(
        AnswerSettings.companion_ratio, ge=0, le=1, description="a further answer sentence scores at least this share of the best"
    )
    companion_probability: float = Field(
        AnswerSettings.companion_probability, ge=0, le=1, description="a further answer sentence's least selector probability"
    )
    answer_top_k: int = Field(5, ge=1, le=50, description="passages considered by /v1/ask and chat")
    write_timeout: float = Field(EngineSettings.write_timeout, gt=0, description="seconds a write waits for the write lock")
    learned_quotes: bool = Field(EngineSettings.learned_quotes, description="choose quotes with the learned selector")
    learned_ranking: bool = Field(
        EngineSettings.learned_ranking, description="order the re-scored head with the learned model (needs learned_quotes)"
    )

    llm_base_url: str | None = Field(None, description="an OpenAI-compatible server (…/v1); unset: extractive answers")
    llm_model: str = Field("local-model", description="model name sent to the upstream server")
    llm_api_key: str | None = Field(None, description="bearer token for the upstream server, if it needs one")
    llm_timeout: float = Field(120.0, gt=0, description="seconds to wait for the upstream server")
    ask_generate: bool = Field(False, description="/v1/ask answers with the upstream model unless a request says generate=false")
    claim_min_support: float = Field(
        ClaimSettings.min_support, ge=0, le=1, description="support a cited passage must give a sentence to keep its marker"
    )
    unsupported_claims: UnsupportedAction = Field(
        ClaimSettings.unsupported, description="a sentence no passage supports: flag (supported=false) or drop"
    )

    # Documents in: files parsed, uploads and upload jobs (index/writing/ingest.py, service/uploads.py, service/jobs.py).
    max_upload_file_bytes: int = Field(50 * MIB, ge=1, description="largest file in an upload (and in a folder), bytes")
    max_upload_bytes: int = Field(200 * MIB, ge=1, description="largest multipart upload request, bytes")
    max_upload_files: int = Field(100, ge=1, description="most files in one upload request")
    upload_job_bytes: int = Field(2 * MIB, ge=0, description="uploads larger than this (in all) become a job: 202")
    max_pdf_pages: int = Field(ParseLimits.max_pages, ge=1, description="most pages of a PDF")
    max_unpacked_bytes: int = Field(ParseLimits.max_unpacked_bytes, ge=1, description="most bytes a .docx unpacks to")
    max_text_chars: int = Field(ParseLimits.max_text_chars, ge=1, description="most characters of text from one file")
    jobs_kept: int = Field(100, ge=1, description="finished upload jobs remembered by GET /v1/jobs")
    max_queued_jobs: int = Field(20, ge=1, description="upload jobs waiting at once; more are refused with 503")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    # Security and limits: service/keys.py, auth.py, hosts.py, limits.py (README "Security and limits").
    api_keys: SecretStr | None = Field(None, description="'read:KEY1,write:KEY2'; with no keys at all the API is open")
    api_keys_file: Path | None = Field(None, description="keys added with `citeqa keys add` (hashes); default <home>/api-keys")
    insecure: bool = Field(False, description="let `citeqa serve` listen on a non-loopback address without API keys")
    allowed_hosts: str = Field("", description="Host names to answer to besides loopback and the bound host; '*': any")
    max_request_bytes: int = Field(DEFAULT_MAX_REQUEST_BYTES, ge=1024, description="largest request body, in bytes")
    max_question_chars: int = Field(DEFAULT_MAX_QUESTION_CHARS, ge=1, description="longest query, question or chat question")
    max_top_k: int = Field(DEFAULT_MAX_TOP_K, ge=1, description="largest top_k a request may ask for")
    max_chat_messages: int = Field(DEFAULT_MAX_CHAT_MESSAGES, ge=1, description="most messages in one chat request")
    max_chat_chars: int = Field(DEFAULT_MAX_CHAT_CHARS, ge=1, description="most characters across one chat request's messages")

    @model_validator(mode="after")
    def _vectors_agree(self) -> Settings:
        """Settings that cannot go together are refused before anything is built (pooled vectors need an ONNX pass
        over encoded chunks)."""
        if self.unit_vectors == "pooled" and self.encoder == "torch":
            raise ValueError("CITEQA_UNIT_VECTORS=pooled needs an ONNX encoder, and CITEQA_ENCODER is torch")
        IndexSettings(chunk_vectors=self.chunk_vectors, unit_vectors=self.unit_vectors)  # its own rules, checked here
        return self

    @model_validator(mode="after")
    def _index_in_home(self) -> Settings:
        if self.index_dir is None:
            self.index_dir = self.home / "collections" / DEFAULT_COLLECTION
        if self.api_keys_file is None:
            self.api_keys_file = self.home / "api-keys"
        if self.models_dir is None:
            self.models_dir = self.home / "models"
        return self

    def parse_limits(self) -> ParseLimits:
        return ParseLimits(
            max_file_bytes=self.max_upload_file_bytes,
            max_unpacked_bytes=self.max_unpacked_bytes,
            max_pages=self.max_pdf_pages,
            max_text_chars=self.max_text_chars,
        )

    def limits(self) -> Limits:
        return Limits(
            max_request_bytes=self.max_request_bytes,
            max_question_chars=self.max_question_chars,
            max_top_k=self.max_top_k,
            max_chat_messages=self.max_chat_messages,
            max_chat_chars=self.max_chat_chars,
        )

    def claim_settings(self) -> ClaimSettings:
        return ClaimSettings(min_support=self.claim_min_support, unsupported=self.unsupported_claims)

    def allowed_host_names(self) -> list[str]:
        return [name.strip() for name in self.allowed_hosts.split(",") if name.strip()]

    def engine_settings(self) -> EngineSettings:
        index = IndexSettings(
            chunker=ChunkerSettings(chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap),
            lexical=LexicalSettings(
                method=self.bm25_method, k1=self.bm25_k1, b=self.bm25_b, stemmer=self.stemmer, stopwords=self.stopwords
            ),
            title_in_passages=self.title_in_passages,
            chunk_vectors=self.chunk_vectors,
            unit_vectors=self.unit_vectors,
        )
        retrieval = RetrievalSettings(
            mode=self.search_mode,
            fusion=self.fusion,
            dense_weight=self.dense_weight,
            rrf_k=self.rrf_k,
            candidates=self.candidates,
            sentence_weight=self.sentence_weight,
            feedback_weight=self.feedback_weight,
            feedback_depth=self.feedback_depth,
        )
        answer = AnswerSettings(
            min_relevance=MIN_RELEVANCE[self.unit_vectors] if self.min_relevance is None else self.min_relevance,
            companion_ratio=self.companion_ratio,
            companion_probability=self.companion_probability,
        )
        return EngineSettings(
            model=self.model,
            index=index,
            retrieval=retrieval,
            answer=answer,
            quote_lexical_weight=self.quote_lexical_weight,
            quote_rerank_weight=self.quote_rerank_weight,
            rerank_depth=self.rerank_depth,
            write_timeout=self.write_timeout,
            learned_quotes=self.learned_quotes,
            learned_ranking=self.learned_ranking,
            encoder=self.encoder,
            models_dir=self.models_dir,
            batch_size=self.embed_batch_size,
        )
