select
    c.customer_id,
    c.first_name,
    c.last_name,
    c.email,
    cc.country_name,
    cc.region,
    count(o.order_id) as order_count,
    coalesce(sum(o.total_amount), 0) as lifetime_value
from {{ ref('stg_customers') }} as c
left join {{ ref('country_codes') }} as cc on cc.country_code = c.country_code
left join {{ ref('fct_orders') }} as o on o.customer_id = c.customer_id
group by all
