select
    date_trunc('month', order_date) as order_month,
    sum(total_amount) as revenue,
    round(sum(total_amount) * 0.38, 2) as estimated_margin
from {{ ref('fct_orders') }}
where status <> 'returned'
group by 1
