select
    c.customer_id,
    c.first_name || ' ' || c.last_name as full_name,
    c.email,
    c.country_code,
    count(o.order_id) as order_count
from {{ ref('stg_customers') }} as c
left join {{ ref('fct_orders') }} as o on o.customer_id = c.customer_id
group by all
