-- Ephemeral (see dbt_project.yml): inlined as a CTE into fct_orders, no relation of its own.
select
    o.order_id,
    p.payment_method,
    p.amount
from {{ ref('stg_orders') }} as o
join {{ ref('stg_payments') }} as p on p.order_id = o.order_id
