"""HTTP for webhooks (admin keys only: a webhook's URL and deliveries are the admin's)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.auth import AdminAccess
from app.errors import responses
from app.idempotency import AdminIdempotencyKey
from app.models import Webhook
from app.pagination import Page, Paged
from app.webhooks import service
from app.webhooks.schemas import (
    DeliveryOut,
    TestSent,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookUpdate,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


def _out(request: Request, webhook: Webhook) -> WebhookOut:
    failing_after: int = request.app.state.settings.webhook_failing_after
    fields = {name: getattr(webhook, name) for name in WebhookOut.model_fields if name != "status"}
    return WebhookOut(**fields, status=service.status(webhook, failing_after))


def _allow_private(request: Request) -> bool:
    allowed: bool = request.app.state.settings.webhook_allow_private_targets
    return allowed


@router.post(
    "",
    operation_id="create_webhook",
    summary="Subscribe a URL to events; the answer carries its signing secret, this once",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses=responses(401, 403, 422),
)
def create_webhook(
    request: Request, data: WebhookCreate, writer: AdminAccess, idem: AdminIdempotencyKey
) -> Response:
    webhook = service.create_webhook(writer, data, _allow_private(request))
    out = WebhookCreated(**_out(request, webhook).model_dump(), secret=webhook.secret)
    return idem.created(out, f"/v1/webhooks/{webhook.id}")


@router.get(
    "",
    operation_id="list_webhooks",
    summary="List webhooks (admin)",
    response_model=Page[WebhookOut],
    responses=responses(401, 403, 422),
)
def list_webhooks(request: Request, writer: AdminAccess, pager: Paged) -> Response:
    return pager.respond(
        writer.session,
        WebhookOut,
        service.list_webhooks,
        lambda w: _out(request, w),
        validated=False,  # the worker changes them without a change record
    )


@router.get(
    "/{webhook_id}",
    operation_id="get_webhook",
    summary="A webhook and how its deliveries stand (admin)",
    response_model=WebhookOut,
    responses=responses(401, 403, 404, 422),
)
def get_webhook(request: Request, webhook_id: int, writer: AdminAccess) -> WebhookOut:
    return _out(request, service.get_webhook(writer.session, webhook_id))


@router.patch(
    "/{webhook_id}",
    operation_id="update_webhook",
    summary="Change a webhook; `active: true` resumes a disabled one where it stopped",
    response_model=WebhookOut,
    responses=responses(401, 403, 404, 422),
)
def update_webhook(request: Request, webhook_id: int, data: WebhookUpdate, writer: AdminAccess) -> WebhookOut:
    return _out(request, service.update_webhook(writer, webhook_id, data, _allow_private(request)))


@router.delete(
    "/{webhook_id}",
    operation_id="delete_webhook",
    summary="Delete a webhook and its delivery log",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 422),
)
def delete_webhook(webhook_id: int, writer: AdminAccess) -> Response:
    service.delete_webhook(writer, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{webhook_id}/test",
    operation_id="test_webhook",
    summary="Queue a signed `webhook.test` event for this webhook",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TestSent,
    responses=responses(401, 403, 404, 422),
)
def test_webhook(webhook_id: int, writer: AdminAccess, idem: AdminIdempotencyKey) -> Response:
    sent = TestSent(event_id=service.send_test(writer, webhook_id))
    return idem.answer(sent, status.HTTP_202_ACCEPTED)


@router.get(
    "/{webhook_id}/deliveries",
    operation_id="list_webhook_deliveries",
    summary="A webhook's delivery attempts, newest first, with status codes and times",
    response_model=Page[DeliveryOut],
    responses=responses(401, 403, 404, 422),
)
def list_deliveries(webhook_id: int, writer: AdminAccess, pager: Paged) -> Response:
    return pager.respond(
        writer.session,
        DeliveryOut,
        lambda s, page: service.list_deliveries(s, webhook_id, page),
        validated=False,  # the worker adds them without a change record
    )
