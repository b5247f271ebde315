{{ config(enabled=false) }}
-- Retired: kept disabled so the manifest lists it under `disabled`.
select
    order_id,
    sum(amount) as revenue
from {{ ref('stg_payments') }}
group by order_id
