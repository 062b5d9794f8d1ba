"""Upload jobs: what a 202 upload is doing (stages per file, counts, a progress fraction), and the recent ones.

Jobs are kept in the data home (service/job_store.py): any server process answers, across restarts."""

from __future__ import annotations

from fastapi import APIRouter

from citeqa.service.errors import ApiError
from citeqa.service.jobs import JOB_ROUTE, JobsDep
from citeqa.service.schemas.documents import JobInfo, JobList
from citeqa.service.schemas.status import ErrorResponse

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("", response_model=JobList, summary="Upload jobs still to run and the recent ones, newest first")
def list_jobs(jobs: JobsDep) -> JobList:
    return JobList(jobs=[job.info() for job in jobs.jobs()])


@router.get(
    "/{job_id}",
    name=JOB_ROUTE,
    response_model=JobInfo,
    responses={404: {"model": ErrorResponse}},
    summary="One upload job: each file's stage (queued, parsing, splitting, embedding, committed, failed) and progress",
)
def get_job(job_id: str, jobs: JobsDep) -> JobInfo:
    job = jobs.get(job_id)
    if job is None:
        raise ApiError(
            404,
            f"no job with id '{job_id}' (finished jobs are kept for CITEQA_JOBS_KEPT jobs and CITEQA_JOBS_KEPT_DAYS days)",
            code="job_not_found",
        )
    return job.info()
