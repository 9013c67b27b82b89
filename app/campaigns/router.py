"""HTTP for campaigns: parse, call the service, shape the response."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.auth import AdminAccess, WriteAccess
from app.campaigns import service
from app.campaigns.schemas import CampaignCreate, CampaignOut, CampaignUpdate
from app.db.database import ReadSession
from app.errors import responses
from app.idempotency import IdempotencyKey
from app.pagination import Page, Paged

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])


@router.get(
    "",
    operation_id="list_campaigns",
    summary="List campaigns",
    response_model=Page[CampaignOut],
    responses=responses(422),
)
def list_campaigns(session: ReadSession, pager: Paged) -> Response:
    return pager.respond(session, CampaignOut, service.list_campaigns)


@router.post(
    "",
    operation_id="create_campaign",
    summary="Create a campaign",
    status_code=status.HTTP_201_CREATED,
    response_model=CampaignOut,
    responses=responses(401, 403, 409, 422),
)
def create_campaign(data: CampaignCreate, writer: WriteAccess, idem: IdempotencyKey) -> Response:
    campaign = service.create_campaign(writer, data)
    return idem.created(CampaignOut.model_validate(campaign), f"/v1/campaigns/{campaign.slug}")


@router.get(
    "/{slug}",
    operation_id="get_campaign",
    summary="A campaign with its letters",
    response_model=CampaignOut,
    responses=responses(404),
)
def get_campaign(slug: str, session: ReadSession) -> CampaignOut:
    return CampaignOut.model_validate(service.get_campaign(session, slug))


@router.patch(
    "/{slug}",
    operation_id="update_campaign",
    summary="Update a campaign",
    response_model=CampaignOut,
    responses=responses(401, 403, 404, 422),
)
def update_campaign(slug: str, data: CampaignUpdate, writer: WriteAccess) -> CampaignOut:
    return CampaignOut.model_validate(service.update_campaign(writer, slug, data))


@router.delete(
    "/{slug}",
    operation_id="delete_campaign",
    summary="Delete a campaign (admin); its letters stay",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404),
)
def delete_campaign(slug: str, writer: AdminAccess) -> Response:
    service.delete_campaign(writer, slug)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
