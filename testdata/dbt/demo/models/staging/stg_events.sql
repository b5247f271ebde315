select
    event_id,
    session_id,
    event_type,
    occurred_at
from {{ source('raw', 'events') }}
