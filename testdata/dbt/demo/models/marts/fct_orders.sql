with items as (
    select
        order_id,
        count(*) as payment_count,
        sum(amount) as total_amount
    from {{ ref('int_order_items') }}
    group by order_id
)

select
    o.order_id,
    o.customer_id,
    o.order_date,
    o.status,
    coalesce(i.payment_count, 0) as payment_count,
    coalesce(i.total_amount, 0) as total_amount
from {{ ref('stg_orders') }} as o
left join items as i on i.order_id = o.order_id
