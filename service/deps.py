"""Shared dependencies, as Annotated aliases so routes declare what they need in one word."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from citeqa.index.engine import Engine
from citeqa.service.errors import ApiError
from citeqa.settings import Settings


def get_engine(request: Request) -> Engine:
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        raise ApiError(503, "the index is not loaded yet")
    return engine


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
