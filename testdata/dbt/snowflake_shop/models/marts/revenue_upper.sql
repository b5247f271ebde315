{{ config(alias='REVENUE') }}
select day, revenue from {{ ref('revenue_daily') }}
