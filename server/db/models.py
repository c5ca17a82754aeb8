"""Import every model module of the server so that Base.metadata is complete."""

from server.auth import apikeys
from server.auth import models as auth_models
from server.records import audit
from server.records.documents import models as document_models
from server.rooms import models as room_models
from server.scheduling import models as scheduling_models

__all__ = ["apikeys", "audit", "auth_models", "document_models", "room_models", "scheduling_models"]
